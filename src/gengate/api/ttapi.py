"""The TTAPI Midjourney front, served as plain ASGI.

These are the hot paths (submit and fetch), so they skip a framework's per-request
machinery: a dict finds the route, the body is read with a size limit, pydantic checks it,
the service does the work, and orjson writes the envelope. Errors are rendered by one
handler from the :class:`~gengate.errors.GengateError` hierarchy.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gengate.api import schemas as s
from gengate.api.envelope import (
    ClientGone,
    Raw,
    error_body,
    ok,
    read_body,
    send_json,
    send_raw,
)
from gengate.errors import (
    BadRequest,
    GengateError,
    MethodNotAllowed,
    Unauthorized,
    UnsupportedMediaType,
)
from gengate.jobs import JobStatus
from gengate.products.midjourney import prompt as prompts
from gengate.quota import from_milli
from gengate.runtime import Runtime
from gengate.service import Submit
from gengate.wire import list_item, timestamp

__all__ = ["Call", "ROUTES", "TtapiFront"]

log = logging.getLogger("gengate.api")

_DIMENSIONS = {"PORTRAIT": (2, 3), "SQUARE": (1, 1), "LANDSCAPE": (3, 2)}
_STATUS_CODES = {str(status.code): status.value for status in JobStatus}


@dataclass(slots=True)
class Call:
    """One request to the TTAPI front."""

    method: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    user_id: int = 0
    #: came in under /hold: runs on the caller's own accounts
    hosted: bool = False

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def api_key(self) -> str | None:
        """``TT-API-KEY``, then ``Authorization: Bearer``, then ``x-api-key``."""
        found: dict[bytes, bytes] = {}
        for key, value in self.headers:
            if key in (b"tt-api-key", b"authorization", b"x-api-key"):
                found.setdefault(key, value)
        if b"tt-api-key" in found:
            return found[b"tt-api-key"].decode("latin-1").strip()
        if b"authorization" in found:
            value = found[b"authorization"].decode("latin-1").strip()
            scheme, _, rest = value.partition(" ")
            return rest.strip() if scheme.lower() == "bearer" else value
        if b"x-api-key" in found:
            return found[b"x-api-key"].decode("latin-1").strip()
        return None

    def data(self) -> dict[str, Any]:
        """The JSON body (POST) or the query string (GET) as a dict."""
        if self.method == "GET" or not self.body.strip():
            return parse_query(self.query)
        ctype = (self.header(b"content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise UnsupportedMediaType(
                f"Content-Type must be application/json, got {ctype or 'none'}"
            )
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body: invalid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(data, dict):
            raise BadRequest("body: must be a JSON object")
        return data

    def submit(self, req: Any) -> Submit:
        """The common part of a submit request."""
        key = self.header(b"idempotency-key")
        if key is not None and not 1 <= len(key) <= 255:
            raise BadRequest("Idempotency-Key: must be 1 to 255 characters")
        # what the key stands for: a replay must repeat the request, not just the key
        request = hashlib.sha256(self.body).hexdigest()[:32] if key is not None else None
        return Submit(self.user_id, req.timeout, req.hookUrl, getattr(req, "getUImages", False),
                      key, req.hookProgress, request, self.hosted,
                      getattr(req, "relaxFallback", False))


def parse_query(raw: bytes) -> dict[str, str]:
    """A query string as a dict (the last value of a repeated name wins)."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text))
    out = {}
    for part in text.split("&"):
        name, sep, value = part.partition("=")
        if name and sep:
            out[name] = value
    return out


Handler = Callable[[Runtime, Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    methods: frozenset[str]
    model: type[s._Wire] | None
    summary: str
    auth: bool = True
    hosted: bool = False


def _submitted(job_id: str) -> dict[str, Any]:
    return ok({"jobId": job_id, "job_id": job_id})


async def imagine(rt: Runtime, call: Call) -> Any:
    req: s.ImagineRequest = s.parse(s.ImagineRequest, call.data())  # type: ignore[assignment]
    sub = call.submit(req)
    return _submitted((await rt.jobs.imagine(sub, req.prompt, req.mode)).id)


async def action(rt: Runtime, call: Call) -> Any:
    req: s.ActionRequest = s.parse(s.ActionRequest, call.data())  # type: ignore[assignment]
    sub = call.submit(req)
    return _submitted((await rt.jobs.action(sub, req.jobId, req.action)).id)


async def blend(rt: Runtime, call: Call) -> Any:
    req: s.BlendRequest = s.parse(s.BlendRequest, call.data())  # type: ignore[assignment]
    sub = call.submit(req)
    job = await rt.jobs.blend(sub, req.imgBase64Array, _DIMENSIONS[req.dimensions], req.mode)
    return _submitted(job.id)


async def describe(rt: Runtime, call: Call) -> Any:
    req: s.DescribeRequest = s.parse(s.DescribeRequest, call.data())  # type: ignore[assignment]
    sub = call.submit(req)
    return _submitted((await rt.jobs.describe(sub, req.base64, req.url, req.mode)).id)


async def seed(rt: Runtime, call: Call) -> Any:
    req: s.SeedRequest = s.parse(s.SeedRequest, call.data())  # type: ignore[assignment]
    return _submitted((await rt.jobs.seed(call.submit(req), req.jobId)).id)


async def inpaint(rt: Runtime, call: Call) -> Any:
    req: s.InpaintRequest = s.parse(s.InpaintRequest, call.data())  # type: ignore[assignment]
    sub = call.submit(req)
    return _submitted((await rt.jobs.inpaint(sub, req.jobId, req.mask, req.prompt)).id)


async def fetch(rt: Runtime, call: Call) -> Any:
    data = call.data()
    job_id = data.get("jobId", data.get("job_id"))
    if not isinstance(job_id, str) or not job_id:
        raise BadRequest("jobId: is required")
    return Raw(await rt.jobs.fetch_body(call.user_id, job_id))


async def fetch_list(rt: Runtime, call: Call) -> Any:
    data = call.data()
    status = data.get("status")
    if isinstance(status, int | str) and str(status) in _STATUS_CODES:
        data["status"] = _STATUS_CODES[str(status)]  # the integer form the items carry
    elif isinstance(status, str):
        data["status"] = status.upper()
    if isinstance(data.get("order"), str):
        data["order"] = data["order"].lower()
    req: s.FetchListQuery = s.parse(s.FetchListQuery, data)  # type: ignore[assignment]
    jobs = await rt.jobs.list_jobs(
        call.user_id, page=req.page, limit=req.limit,
        status=None if req.status == "ALL" else req.status, ascending=req.order == "asc",
    )
    return ok([list_item(j) for j in jobs])


async def info(rt: Runtime, call: Call) -> Any:
    user = await rt.store.get_user(call.user_id)
    return ok({
        "email": user.email,
        "email_verified_at": timestamp(user.created_at),
        "balance": from_milli(user.balance),
        "freeze_balance": from_milli(user.freeze_balance),
        "max_queue": user.max_queue,
        "in_progress": user.in_flight,
        "illegal_prompts_today": await rt.jobs.illegal_count(call.user_id),
        "created_at": timestamp(user.created_at),
    })


async def prompt_check(rt: Runtime, call: Call) -> Any:
    req: s.PromptCheckRequest = s.parse(s.PromptCheckRequest, call.data())  # type: ignore
    rt.jobs.check_prompt(req.prompt)
    return ok(prompts.PROMPT_CHECK_OK)


async def status(rt: Runtime, call: Call) -> Any:
    return ok(await rt.status.modes())


async def webhook_secret(rt: Runtime, call: Call) -> Any:
    return ok({"secret": await rt.store.signing_secret(call.user_id)})


async def rotate_webhook_secret(rt: Runtime, call: Call) -> Any:
    return ok({"secret": await rt.store.signing_secret(call.user_id, rotate=True)})


async def deliveries(rt: Runtime, call: Call) -> Any:
    req: s.DeliveriesQuery = s.parse(s.DeliveriesQuery, call.data())  # type: ignore[assignment]
    return ok(await rt.store.deliveries(call.user_id, req.jobId, req.page, req.limit))


async def redeliver(rt: Runtime, call: Call) -> Any:
    req: s.RedeliverRequest = s.parse(s.RedeliverRequest, call.data())  # type: ignore
    await rt.store.redeliver(call.user_id, req.deliveryId, rt.jobs.clock.now())
    if rt.dispatcher is not None:
        rt.dispatcher.wake()
    return ok({"deliveryId": req.deliveryId})


async def hold_list(rt: Runtime, call: Call) -> Any:
    return ok(await rt.pool.hold_list(call.user_id))


async def hold_add(rt: Runtime, call: Call) -> Any:
    req = s.parse(s.HoldAccountAdd, call.data())
    return ok(await rt.pool.hold_add(call.user_id, req.model_dump(exclude_unset=True)))


async def hold_update(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountUpdate = s.parse(s.HoldAccountUpdate, call.data())  # type: ignore
    changes = req.model_dump(exclude_unset=True, exclude={"accountId"})
    return ok(await rt.pool.hold_update(call.user_id, req.accountId, changes))


async def hold_enable(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountRef = s.parse(s.HoldAccountRef, call.data())  # type: ignore
    return ok(await rt.pool.hold_update(call.user_id, req.accountId, {"enabled": True}))


async def hold_disable(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountRef = s.parse(s.HoldAccountRef, call.data())  # type: ignore
    return ok(await rt.pool.hold_update(call.user_id, req.accountId, {"enabled": False}))


async def hold_delete(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountRef = s.parse(s.HoldAccountRef, call.data())  # type: ignore
    await rt.pool.delete(req.accountId, call.user_id)
    return ok({"accountId": req.accountId})


async def hold_events(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountRef = s.parse(s.HoldAccountRef, call.data())  # type: ignore
    return ok(await rt.pool.events(req.accountId, call.user_id))


_GET, _POST, _BOTH = frozenset({"GET"}), frozenset({"POST"}), frozenset({"GET", "POST"})
_V1 = "/midjourney/v1"

ROUTES: dict[str, Route] = {
    f"{_V1}/imagine": Route(imagine, _POST, s.ImagineRequest, "Submit an imagine job"),
    f"{_V1}/action": Route(action, _POST, s.ActionRequest, "Run a button action on a job"),
    f"{_V1}/blend": Route(blend, _POST, s.BlendRequest, "Blend 2 to 5 images"),
    f"{_V1}/describe": Route(describe, _POST, s.DescribeRequest, "Describe an image"),
    f"{_V1}/seed": Route(seed, _POST, s.SeedRequest, "Get the seed of a job"),
    f"{_V1}/inpaint": Route(inpaint, _POST, s.InpaintRequest, "Vary a region of an image"),
    f"{_V1}/fetch": Route(fetch, _BOTH, s.FetchRequest, "Fetch a job (free)"),
    f"{_V1}/fetch-list": Route(fetch_list, _BOTH, s.FetchListQuery, "List your jobs (free)"),
    f"{_V1}/info": Route(info, _BOTH, None, "Account balance and limits"),
    f"{_V1}/promptCheck": Route(prompt_check, _POST, s.PromptCheckRequest,
                                "Check a prompt (free)"),
    "/midjourney/status": Route(status, _GET, None, "Service status per mode", auth=False),
    "/webhooks/secret": Route(webhook_secret, _GET, None,
                              "Your webhook signing secret (Standard Webhooks)"),
    "/webhooks/secret/rotate": Route(rotate_webhook_secret, _POST, None,
                                     "Replace your webhook signing secret"),
    "/webhooks/deliveries": Route(deliveries, _BOTH, s.DeliveriesQuery,
                                  "Your webhook deliveries and their attempts"),
    "/webhooks/redeliver": Route(redeliver, _POST, s.RedeliverRequest,
                                 "Send a delivery again"),
    "/hold/account/list": Route(hold_list, _BOTH, None,
                                "Your own upstream accounts (hosting), with useMode"),
    "/hold/account/add": Route(hold_add, _POST, s.HoldAccountAdd,
                               "Register one of your upstream accounts"),
    "/hold/account/update": Route(hold_update, _POST, s.HoldAccountUpdate,
                                  "Change one of your accounts"),
    "/hold/account/enable": Route(hold_enable, _POST, s.HoldAccountRef,
                                  "Enable an account (clears its health flags)"),
    "/hold/account/disable": Route(hold_disable, _POST, s.HoldAccountRef,
                                   "Stop routing jobs to an account"),
    "/hold/account/delete": Route(hold_delete, _POST, s.HoldAccountRef, "Remove an account"),
    "/hold/account/events": Route(hold_events, _BOTH, s.HoldAccountRef,
                                  "An account's health changes, newest first"),
}
#: the Midjourney paths again under /hold, routed only to the caller's own accounts
ROUTES.update({
    f"/hold{path}": Route(route.handler, route.methods, route.model,
                          f"{route.summary} (on your own accounts)", route.auth, hosted=True)
    for path, route in list(ROUTES.items()) if path.startswith(_V1)
})


def _client(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def admit_caller(rt: Runtime, call: Call, scope: dict[str, Any]) -> int:
    """Authenticate and count the request against its key's limits (or its address's)."""
    try:
        principal = await rt.jobs.principal(call.api_key())
    except Unauthorized:
        await rt.limiter.check_address(_client(scope))
        raise
    await rt.limiter.check_key(principal.key_id, principal.limits)
    return principal.user_id


class TtapiFront:
    """Serves :data:`ROUTES`; anything else goes to ``fallback``."""

    def __init__(self, runtime: Callable[[], Runtime], max_body: int, fallback: Any):
        self._runtime = runtime
        self._max_body = max_body
        self._fallback = fallback

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self._fallback(scope, receive, send)
            return
        try:
            body = await self._handle(route, scope, receive)
            if isinstance(body, Raw):
                await send_raw(send, 200, body.payload)
            else:
                await send_json(send, 200, body)
        except GengateError as exc:
            await send_json(send, exc.status_code, error_body(exc), exc.headers)
        except ClientGone:
            return
        except Exception:
            log.exception("event=request_crashed path=%s", scope["path"])
            await send_json(send, 500, error_body(GengateError()))

    async def _handle(self, route: Route, scope: dict[str, Any], receive: Any) -> Any:
        method = scope["method"]
        if method not in route.methods:
            allowed = ", ".join(sorted(route.methods))
            raise MethodNotAllowed(f"method {method} not allowed; use {allowed}",
                                   headers={"Allow": allowed})
        call = Call(method, scope.get("query_string", b""), scope["headers"],
                    hosted=route.hosted)
        rt = self._runtime()
        if route.auth:
            call.user_id = await admit_caller(rt, call, scope)
        else:
            await rt.limiter.check_address(_client(scope))
        if method == "POST":
            call.body = await read_body(scope, receive, self._max_body)
        return await route.handler(rt, call)

