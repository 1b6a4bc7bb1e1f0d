"""Wire models of request bodies, exactly as the TTAPI contract names the fields.

Unknown fields are accepted and ignored (third-party clients send extra ones). Aliases:
``model`` for ``mode`` and ``job_id`` for ``jobId``. The OpenAPI document is built from
these models, so it always matches what the server accepts. Every string and list field is
bounded (:mod:`gengate.limits`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from gengate.errors import BadRequest
from gengate.jobs import Mode
from gengate.limits import (
    MAX_ACTION_CHARS,
    MAX_ID_CHARS,
    MAX_IMAGE_BASE64_CHARS,
    MAX_NOTE_CHARS,
    MAX_PROMPT_CHARS,
    MAX_URL_CHARS,
)
from gengate.quota import MAX_QUOTA

__all__ = [
    "ActionRequest",
    "CreateAccountRequest",
    "HoldAccountAdd",
    "HoldAccountRef",
    "HoldAccountUpdate",
    "UpdateAccountRequest",
    "BlendRequest",
    "CreateUserRequest",
    "DescribeRequest",
    "FetchListQuery",
    "FetchRequest",
    "ImagineRequest",
    "InpaintRequest",
    "JobsQuery",
    "KeyChange",
    "KeyCreate",
    "KeyRef",
    "KeyUpdate",
    "KeyUsageQuery",
    "PromptCheckRequest",
    "SeedRequest",
    "TopUpRequest",
    "UpdateUserRequest",
    "validation_message",
]


_Image = Annotated[str, Field(max_length=MAX_IMAGE_BASE64_CHARS)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=False)


#: a string with something besides white space in it (JSON Schema patterns are unanchored)
NOT_BLANK = r"\S"

#: the last page a listing serves: far past any real listing, and its offset stays a
#: small integer for the database
MAX_PAGE = 1_000_000
_PAGE = Field(1, ge=1, le=MAX_PAGE, description=f"1 to {MAX_PAGE}")


_MODE = Field(
    Mode.FAST,
    validation_alias=AliasChoices("mode", "model"),
    description="relax, fast or turbo; `model` is accepted as an alias",
)
_TIMEOUT = Field(None, description="Seconds, 300-1200; default and minimum 300 (600 in relax)")
_HOOK = Field(None, max_length=MAX_URL_CHARS,
              description="URL that receives the fetch body when the job ends")
_UIMAGES = Field(False, description="Also store the four split images of a grid in `images`")
_PROGRESS = Field(False, description="Also notify hookUrl at each progress step")
_JOB_ID = Field(min_length=1, max_length=MAX_ID_CHARS,
                validation_alias=AliasChoices("jobId", "job_id"),
                description="The parent job")
_FALLBACK = Field(False, description="gengate extension: a fast job may run in a relax slot "
                  "(charged relax's price) when no fast slot is free")


class ImagineRequest(_Wire):
    """POST /midjourney/v1/imagine"""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=NOT_BLANK,
                        description="Midjourney prompt with its `--` parameters")
    mode: Mode = _MODE
    relaxFallback: bool = _FALLBACK
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS
    getUImages: bool = _UIMAGES
    translation: bool = Field(True, description="Accepted for compatibility")


class ActionRequest(_Wire):
    """POST /midjourney/v1/action"""

    jobId: str = _JOB_ID
    action: str = Field(min_length=1, max_length=MAX_ACTION_CHARS,
                        description="upsample1..4, variation1..4, reroll, zoom_out_2, ...")
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS
    getUImages: bool = _UIMAGES


class BlendRequest(_Wire):
    """POST /midjourney/v1/blend"""

    imgBase64Array: list[_Image] = Field(
        max_length=5, description="2 to 5 images as data:image/...;base64,...")
    dimensions: Literal["PORTRAIT", "SQUARE", "LANDSCAPE"] = "SQUARE"
    mode: Mode = _MODE
    relaxFallback: bool = _FALLBACK
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS
    getUImages: bool = _UIMAGES

    @field_validator("imgBase64Array", mode="before")
    @classmethod
    def _two_to_five(cls, value: object) -> object:
        # counted before any item is looked at, with the contract's wording
        if isinstance(value, list) and not 2 <= len(value) <= 5:
            raise ValueError("give 2 to 5 images")
        return value


class DescribeRequest(_Wire):
    """POST /midjourney/v1/describe"""

    base64: str | None = Field(None, max_length=MAX_IMAGE_BASE64_CHARS,
                               description="The image; wins over `url`")
    url: str | None = Field(None, max_length=MAX_URL_CHARS,
                            description="Where to download the image")
    mode: Mode = _MODE
    relaxFallback: bool = _FALLBACK
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS


class SeedRequest(_Wire):
    """POST /midjourney/v1/seed"""

    jobId: str = _JOB_ID
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS


class InpaintRequest(_Wire):
    """POST /midjourney/v1/inpaint (Vary Region)"""

    jobId: str = _JOB_ID
    mask: str = Field(max_length=MAX_IMAGE_BASE64_CHARS,
                      description="Base64 black-and-white mask, the image's size; white = redraw")
    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS
    getUImages: bool = _UIMAGES


class FetchRequest(_Wire):
    """GET (query) or POST (body) /midjourney/v1/fetch"""

    jobId: str = _JOB_ID


class DeliveriesQuery(_Wire):
    """GET (query) or POST (body) /webhooks/deliveries"""

    jobId: str | None = Field(None, max_length=MAX_ID_CHARS,
                              validation_alias=AliasChoices("jobId", "job_id"))
    page: int = _PAGE
    limit: int = Field(20, ge=1, le=100)


class RedeliverRequest(_Wire):
    """POST /webhooks/redeliver"""

    deliveryId: str = Field(max_length=MAX_ID_CHARS)


class FetchListQuery(_Wire):
    """GET (query) or POST (body) /midjourney/v1/fetch-list"""

    page: int = _PAGE
    limit: int = Field(10, ge=1, le=100)
    status: Literal["PENDING_QUEUE", "ON_QUEUE", "SUCCESS", "FAILED", "ALL"] = Field(
        "SUCCESS", description="Case-insensitive; ALL lists every status"
    )
    order: Literal["asc", "desc"] = "desc"


class JobsQuery(_Wire):
    """GET (query) or POST (body) /jobs/list: your jobs across products"""

    page: int = Field(1, ge=1)
    limit: int = Field(10, ge=1, le=100)
    product: str | None = Field(None, max_length=32,
                                description="Only this product's jobs (midjourney, flux, ...)")
    status: str | None = Field(None, max_length=32, description="A status as the product "
                               "spells it (with `product`), else PENDING_QUEUE, ON_QUEUE, "
                               "SUCCESS or FAILED")
    order: Literal["asc", "desc"] = "desc"


class PromptCheckRequest(_Wire):
    """POST /midjourney/v1/promptCheck"""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=NOT_BLANK)


class CreateUserRequest(_Wire):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    balance: float = Field(0, ge=0, le=MAX_QUOTA, allow_inf_nan=False)
    max_queue: int | None = Field(None, ge=0)


class TopUpRequest(_Wire):
    amount: float = Field(ge=-MAX_QUOTA, le=MAX_QUOTA, allow_inf_nan=False,
                          description="Quota to add (negative removes); a multiple of 0.001")
    note: str = Field("", max_length=MAX_NOTE_CHARS)


class PriceSet(_Wire):
    """One price of the operator's (PUT /admin/prices; docs/quota.md)."""

    tier: Literal["main", "hosting"] = Field(
        "main", description="main: the operator's accounts; hosting: users' own accounts")
    key: str = Field(min_length=5, max_length=200,
                     description="product:action:mode; `*` for any action or mode")
    price: float = Field(ge=0, le=MAX_QUOTA, allow_inf_nan=False,
                         description="Quota per job (up to three decimals)")


class PasswordRequest(_Wire):
    """A user's console password (8 to 256 characters); null removes it."""

    password: str | None = Field(..., max_length=256)


class UpdateUserRequest(_Wire):
    max_queue: int | None = Field(None, ge=0)
    active: bool | None = None
    rate_per_second: int | None = Field(None, ge=0, description="0 = no limit")
    rate_per_minute: int | None = Field(None, ge=0, description="0 = no limit")


class KeyUpdate(_Wire):
    """An API key's name and limits; each is optional, and ``null`` removes that limit
    (docs/keys.md)."""

    name: str | None = Field(None, max_length=64, description="A label for the key")
    products: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=64, description="Products the key may use (e.g. `midjourney`, `llm`); "
        "null: all")
    models: list[Annotated[str, Field(max_length=128)]] | None = Field(
        None, max_length=64, description="LLM model patterns (`claude-*`) the key may use; "
        "null: all")
    cidrs: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=256, description="Client addresses (CIDRs) the key may be used from; "
        "null: any")
    expiresAt: datetime | float | None = Field(
        None, description="When the key stops working: ISO 8601 or epoch seconds; null: never")
    capDay: float | None = Field(None, ge=0, le=MAX_QUOTA, allow_inf_nan=False,
                                 description="Most quota the key may spend per UTC day")
    capMonth: float | None = Field(None, ge=0, le=MAX_QUOTA, allow_inf_nan=False,
                                   description="Most quota per UTC month")
    capTotal: float | None = Field(None, ge=0, le=MAX_QUOTA, allow_inf_nan=False,
                                   description="Most quota in all")
    ratePerSecond: int | None = Field(None, ge=0, le=10**6, description="Requests per second "
                                      "(0: none; null: the user's)")
    ratePerMinute: int | None = Field(None, ge=0, le=10**8,
                                      description="Requests per minute")


class KeyCreate(KeyUpdate):
    """A new API key; its secret is in the answer once and never again."""


class KeyRef(_Wire):
    keyId: int = Field(ge=1, lt=2**31, description="The key's id (see the key list)")


class KeyChange(KeyUpdate):
    keyId: int = Field(ge=1, lt=2**31, description="The key's id")


class KeyUsageQuery(_Wire):
    days: int = Field(30, ge=1, le=366, description="UTC days back from today")


_NAME = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
              description="Unique within the pool: letters, digits, `_`, `.`, `-`")
_URL = Field(min_length=1, max_length=MAX_URL_CHARS,
             description="The upstream's base URL (http or https)")
_SECRET = Field(None, min_length=1, max_length=4096,
                description="midjourney-proxy `mj-api-secret`; stored encrypted, never shown")
_APIKEY = Field(None, min_length=1, max_length=4096,
                description="The key of a ttapi, bfl or openai account; stored encrypted, "
                "never shown")
_INSTANCE = Field(None, max_length=64, validation_alias=AliasChoices("instanceId", "channelId"),
                  description="midjourney-proxy instance (Discord channel id) to use; "
                  "`channelId` is accepted as an alias")
_PROTOCOL = Field(None, description="midjourney-proxy project the account's server runs: "
                  "`trueai` (trueai-org's fork), `novicezk` (the original), or `auto` "
                  "(default: told from its tasks)")
Protocol = Literal["auto", "trueai", "novicezk"]


class _AccountFields(_Wire):
    """Fields an operator's account shares between create and update."""

    products: list[Annotated[str, Field(max_length=32)]] | None = Field(
        None, min_length=1, max_length=20, description="The products it runs, e.g. "
        "[\"midjourney\", \"flux\"]; default: Midjourney where the provider runs it "
        "(`local`: [\"*\"], every product)")
    secret: str | None = _SECRET
    apiKey: str | None = _APIKEY
    instanceId: str | None = _INSTANCE
    protocol: Protocol | None = _PROTOCOL
    slots: dict[Annotated[str, Field(max_length=16)], int] | None = Field(
        None, max_length=8,
        description="Concurrent jobs per mode, e.g. {\"fast\": 12, \"relax\": 3}")
    priority: int | None = Field(None, ge=-1000, le=1000, description="Higher is tried first")
    weight: int | None = Field(None, ge=1, le=1000, description="Share among equals")
    enabled: bool | None = None
    dailyCap: int | None = Field(None, ge=1, le=1_000_000,
                                 description="Submissions per UTC day at most")
    minGap: float | None = Field(None, ge=0, le=3600,
                                 description="Seconds between two submissions")
    gapJitter: float | None = Field(None, ge=0, le=3600,
                                    description="Up to this many seconds more, at random")
    workHours: str | None = Field(None, max_length=200,
                                  description="UTC windows, e.g. `09:00-22:50`; empty = always")
    pollInterval: float | None = Field(None, gt=0, le=600,
                                       description="Seconds between polls of the account")


class CreateAccountRequest(_AccountFields):
    """POST /admin/accounts"""

    name: str = _NAME
    provider: str = Field("midjourney_proxy", max_length=32, description="local, or an "
                          "adapter kind of some product: midjourney_proxy, ttapi, ...")
    baseUrl: str | None = Field(None, min_length=1, max_length=MAX_URL_CHARS,
                                description="Required except for `local`; `bfl` defaults to "
                                "https://api.bfl.ai, `openai` to https://api.openai.com and "
                                "`google` to https://generativelanguage.googleapis.com")


class UpdateAccountRequest(_AccountFields):
    """PATCH /admin/accounts/{account_id}"""

    name: str | None = Field(None, min_length=1, max_length=40,
                             pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    baseUrl: str | None = Field(None, min_length=1, max_length=MAX_URL_CHARS)


_USE_MODE = Field(description="1 relax, 2 fast, 3 turbo: the mode the account runs jobs in")


class HoldAccountAdd(_Wire):
    """POST /hold/account/add"""

    name: str = _NAME
    provider: Literal["midjourney_proxy", "ttapi"] = "midjourney_proxy"
    baseUrl: str = _URL
    secret: str | None = _SECRET
    apiKey: str | None = _APIKEY
    instanceId: str | None = _INSTANCE
    protocol: Protocol | None = _PROTOCOL
    useMode: Literal[1, 2, 3] = Field(2, description=_USE_MODE.description)
    maxConcurrency: int = Field(3, ge=1, le=50, description="Jobs at once (the plan's limit)")
    enabled: bool = True


_ACCOUNT_ID = Field(ge=1, le=2**31 - 1, description="The account, from /hold/account/list")


class HoldAccountUpdate(_Wire):
    """POST /hold/account/update"""

    accountId: int = _ACCOUNT_ID
    name: str | None = Field(None, min_length=1, max_length=40,
                             pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    baseUrl: str | None = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    secret: str | None = _SECRET
    apiKey: str | None = _APIKEY
    instanceId: str | None = _INSTANCE
    protocol: Protocol | None = _PROTOCOL
    useMode: Literal[1, 2, 3] | None = None
    maxConcurrency: int | None = Field(None, ge=1, le=50)
    enabled: bool | None = None


class HoldAccountRef(_Wire):
    """POST /hold/account/{enable,disable,delete}"""

    accountId: int = _ACCOUNT_ID


def validation_message(exc: ValidationError) -> str:
    """``field: what is wrong`` for the first error, naming the field as the client sent it."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    msg = err["msg"]
    ctx = err.get("ctx") or {}
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "value_error":
        msg = str(err["ctx"]["error"])  # our own wording, without pydantic's "Value error, "
    elif (err["type"] == "string_too_short" and ctx.get("min_length") == 1) or (
            err["type"] == "string_pattern_mismatch" and ctx.get("pattern") == NOT_BLANK):
        msg = "must not be empty"
    return f"{loc}: {msg}"


def parse(model: type[_Wire], data: object) -> _Wire:
    if not isinstance(data, dict):
        raise BadRequest("body: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None
