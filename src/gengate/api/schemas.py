"""Wire models of request bodies, exactly as the TTAPI contract names the fields.

Unknown fields are accepted and ignored (third-party clients send extra ones). Aliases:
``model`` for ``mode`` and ``job_id`` for ``jobId``. The OpenAPI document is built from
these models, so it always matches what the server accepts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from gengate.errors import BadRequest
from gengate.jobs import Mode

__all__ = [
    "ActionRequest",
    "BlendRequest",
    "CreateUserRequest",
    "DescribeRequest",
    "FetchListQuery",
    "FetchRequest",
    "ImagineRequest",
    "InpaintRequest",
    "PromptCheckRequest",
    "SeedRequest",
    "TopUpRequest",
    "UpdateUserRequest",
    "validation_message",
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=False)


_MODE = Field(
    Mode.FAST,
    validation_alias=AliasChoices("mode", "model"),
    description="relax, fast or turbo; `model` is accepted as an alias",
)
_TIMEOUT = Field(None, description="Seconds, 300-1200; default and minimum 300 (600 in relax)")
_HOOK = Field(None, description="URL that receives the fetch body when the job ends")
_UIMAGES = Field(False, description="Also store the four split images of a grid in `images`")
_PROGRESS = Field(False, description="Also notify hookUrl at each progress step")
_JOB_ID = Field(validation_alias=AliasChoices("jobId", "job_id"), description="The parent job")


class ImagineRequest(_Wire):
    """POST /midjourney/v1/imagine"""

    prompt: str = Field(description="Midjourney prompt with its `--` parameters")
    mode: Mode = _MODE
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS
    getUImages: bool = _UIMAGES
    translation: bool = Field(True, description="Accepted for compatibility")


class ActionRequest(_Wire):
    """POST /midjourney/v1/action"""

    jobId: str = _JOB_ID
    action: str = Field(description="upsample1..4, variation1..4, reroll, zoom_out_2, ...")
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS
    getUImages: bool = _UIMAGES


class BlendRequest(_Wire):
    """POST /midjourney/v1/blend"""

    imgBase64Array: list[str] = Field(description="2 to 5 images as data:image/...;base64,...")
    dimensions: Literal["PORTRAIT", "SQUARE", "LANDSCAPE"] = "SQUARE"
    mode: Mode = _MODE
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS
    getUImages: bool = _UIMAGES


class DescribeRequest(_Wire):
    """POST /midjourney/v1/describe"""

    base64: str | None = Field(None, description="The image; wins over `url`")
    url: str | None = Field(None, description="Where to download the image")
    mode: Mode = _MODE
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
    mask: str = Field(description="Base64 black-and-white mask, the image's size; white = redraw")
    prompt: str | None = None
    timeout: int | None = _TIMEOUT
    hookUrl: str | None = _HOOK
    hookProgress: bool = _PROGRESS
    getUImages: bool = _UIMAGES


class FetchRequest(_Wire):
    """GET (query) or POST (body) /midjourney/v1/fetch"""

    jobId: str = _JOB_ID


class DeliveriesQuery(_Wire):
    """GET (query) or POST (body) /webhooks/deliveries"""

    jobId: str | None = Field(None, validation_alias=AliasChoices("jobId", "job_id"))
    page: int = Field(1, ge=1)
    limit: int = Field(20, ge=1, le=100)


class RedeliverRequest(_Wire):
    """POST /webhooks/redeliver"""

    deliveryId: str


class FetchListQuery(_Wire):
    """GET (query) or POST (body) /midjourney/v1/fetch-list"""

    page: int = Field(1, ge=1)
    limit: int = Field(10, ge=1, le=100)
    status: Literal["PENDING_QUEUE", "ON_QUEUE", "SUCCESS", "FAILED", "ALL"] = Field(
        "SUCCESS", description="Case-insensitive; ALL lists every status"
    )
    order: Literal["asc", "desc"] = "desc"


class PromptCheckRequest(_Wire):
    """POST /midjourney/v1/promptCheck"""

    prompt: str


class CreateUserRequest(_Wire):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    balance: float = Field(0, ge=0)
    max_queue: int | None = Field(None, ge=0)


class TopUpRequest(_Wire):
    amount: float
    note: str = ""


class UpdateUserRequest(_Wire):
    max_queue: int | None = Field(None, ge=0)
    active: bool | None = None
    rate_per_second: int | None = Field(None, ge=0, description="0 = no limit")
    rate_per_minute: int | None = Field(None, ge=0, description="0 = no limit")


def validation_message(exc: ValidationError) -> str:
    """``field: what is wrong`` for the first error, naming the field as the client sent it."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    msg = err["msg"]
    if err["type"] == "missing":
        msg = "is required"
    return f"{loc}: {msg}"


def parse(model: type[_Wire], data: object) -> _Wire:
    if not isinstance(data, dict):
        raise BadRequest("body: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None
