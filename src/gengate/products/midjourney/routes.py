"""Midjourney's TTAPI routes: ``/midjourney/v1/...`` and ``/midjourney/status`` (the same
paths again under ``/hold`` run on the caller's own accounts)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gengate.api import schemas as s
from gengate.api.call import Call
from gengate.api.envelope import Raw, ok
from gengate.clock import timestamp
from gengate.errors import BadRequest
from gengate.jobs import JobStatus
from gengate.limits import MAX_ID_CHARS
from gengate.products.base import (
    GET,
    GET_POST,
    POST,
    ProductRoute,
    Services,
    Submit,
    submitted,
)
from gengate.products.midjourney import prompt as prompts
from gengate.products.midjourney.wire import list_item
from gengate.quota import from_milli

if TYPE_CHECKING:
    from gengate.products.midjourney.product import MidjourneyProduct

__all__ = ["routes"]

_DIMENSIONS = {"PORTRAIT": (2, 3), "SQUARE": (1, 1), "LANDSCAPE": (3, 2)}
_STATUS_CODES = {str(status.code): status.value for status in JobStatus}
V1 = "/midjourney/v1"


def _submit_of(call: Call, req: Any) -> Submit:
    """The common part of a Midjourney submit (fields its models may lack default)."""
    return call.submit(hook_url=req.hookUrl, timeout=req.timeout,
                       get_u_images=getattr(req, "getUImages", False),
                       hook_progress=req.hookProgress,
                       relax_fallback=getattr(req, "relaxFallback", False))


#: bodies up to this size are parsed on the event loop; an image route's larger ones in a thread
_INLINE_BODY = 64 * 1024


async def _parse_images(call: Call, model: type[s._Wire]) -> tuple[Any, Submit]:
    """An image route's request and submit: megabytes of JSON are parsed (and hashed, for an
    Idempotency-Key) off the event loop."""

    def parse() -> tuple[Any, Submit]:
        req = s.parse(model, call.data())
        found = req, _submit_of(call, req)
        call.body = b""  # parsed and hashed: the images live on in `req` alone
        return found

    if len(call.body) <= _INLINE_BODY:
        return parse()
    return await asyncio.to_thread(parse)


class _Handlers:
    """The handlers, bound to one configured product (its prompt rules, word filter)."""

    def __init__(self, product: MidjourneyProduct):
        self.product = product
        self.subs = product.submissions

    async def imagine(self, sv: Services, call: Call) -> Any:
        req: s.ImagineRequest = s.parse(s.ImagineRequest, call.data())  # type: ignore
        sub = call.submit(hook_url=req.hookUrl, timeout=req.timeout,
                          get_u_images=req.getUImages, hook_progress=req.hookProgress,
                          relax_fallback=req.relaxFallback)
        return submitted(await self.subs.imagine(sv.jobs, sub, req.prompt, req.mode))

    async def action(self, sv: Services, call: Call) -> Any:
        req: s.ActionRequest = s.parse(s.ActionRequest, call.data())  # type: ignore
        sub = call.submit(hook_url=req.hookUrl, timeout=req.timeout,
                          get_u_images=req.getUImages, hook_progress=req.hookProgress)
        return submitted(await self.subs.action(sv.jobs, sub, req.jobId, req.action))

    async def blend(self, sv: Services, call: Call) -> Any:
        req, sub = await _parse_images(call, s.BlendRequest)
        job = await self.subs.blend(sv.jobs, sub, req.imgBase64Array,
                                    _DIMENSIONS[req.dimensions], req.mode)
        return submitted(job)

    async def describe(self, sv: Services, call: Call) -> Any:
        req, sub = await _parse_images(call, s.DescribeRequest)
        return submitted(await self.subs.describe(sv.jobs, sub, req.base64, req.url, req.mode))

    async def seed(self, sv: Services, call: Call) -> Any:
        req: s.SeedRequest = s.parse(s.SeedRequest, call.data())  # type: ignore
        sub = call.submit(hook_url=req.hookUrl, timeout=req.timeout,
                          hook_progress=req.hookProgress)
        return submitted(await self.subs.seed(sv.jobs, sub, req.jobId))

    async def inpaint(self, sv: Services, call: Call) -> Any:
        req, sub = await _parse_images(call, s.InpaintRequest)
        return submitted(await self.subs.inpaint(sv.jobs, sub, req.jobId, req.mask, req.prompt))

    async def fetch(self, sv: Services, call: Call) -> Any:
        data = call.data()
        job_id = data.get("jobId", data.get("job_id"))
        if not isinstance(job_id, str) or not job_id:
            raise BadRequest("jobId: is required")
        if len(job_id) > MAX_ID_CHARS:  # the model words the refusal (the hot path skips it)
            s.parse(s.FetchRequest, data)
        return Raw(await sv.jobs.fetch_body(call.user_id, job_id, self.product.name))

    async def fetch_list(self, sv: Services, call: Call) -> Any:
        data = call.data()
        status = data.get("status")
        if isinstance(status, int | str) and str(status) in _STATUS_CODES:
            data["status"] = _STATUS_CODES[str(status)]  # the integer form the items carry
        elif isinstance(status, str):
            data["status"] = status.upper()
        if isinstance(data.get("order"), str):
            data["order"] = data["order"].lower()
        req: s.FetchListQuery = s.parse(s.FetchListQuery, data)  # type: ignore
        jobs = await sv.jobs.list_jobs(
            call.user_id, page=req.page, limit=req.limit,
            status=None if req.status == "ALL" else req.status, ascending=req.order == "asc",
            product=self.product.name,
        )
        return ok([list_item(j) for j in jobs])

    async def info(self, sv: Services, call: Call) -> Any:
        user = await sv.jobs.user(call.user_id)
        return ok({
            "email": user.email,
            "email_verified_at": timestamp(user.created_at),
            "balance": from_milli(user.balance),
            "freeze_balance": from_milli(user.freeze_balance),
            "max_queue": user.max_queue,
            "in_progress": user.in_flight,
            "illegal_prompts_today": await sv.jobs.illegal_count(call.user_id),
            "created_at": timestamp(user.created_at),
        })

    async def prompt_check(self, sv: Services, call: Call) -> Any:
        req: s.PromptCheckRequest = s.parse(s.PromptCheckRequest, call.data())  # type: ignore
        await self.subs.check_prompt(req.prompt)
        return ok(prompts.PROMPT_CHECK_OK)

    async def status(self, sv: Services, call: Call) -> Any:
        return ok(await sv.status.modes(self.product.name))



def routes(product: MidjourneyProduct) -> list[ProductRoute]:
    """The Midjourney front, bound to ``product``."""
    h = _Handlers(product)
    return [
        ProductRoute(f"{V1}/imagine", POST, h.imagine, s.ImagineRequest,
                     "Submit an imagine job", hosted=True),
        ProductRoute(f"{V1}/action", POST, h.action, s.ActionRequest,
                     "Run a button action on a job", hosted=True),
        ProductRoute(f"{V1}/blend", POST, h.blend, s.BlendRequest, "Blend 2 to 5 images",
                     hosted=True, images=True),
        ProductRoute(f"{V1}/describe", POST, h.describe, s.DescribeRequest, "Describe an image",
                     hosted=True, images=True),
        ProductRoute(f"{V1}/seed", POST, h.seed, s.SeedRequest, "Get the seed of a job",
                     hosted=True),
        ProductRoute(f"{V1}/inpaint", POST, h.inpaint, s.InpaintRequest,
                     "Vary a region of an image", hosted=True, images=True),
        ProductRoute(f"{V1}/fetch", GET_POST, h.fetch, s.FetchRequest, "Fetch a job (free)",
                     hosted=True),
        ProductRoute(f"{V1}/fetch-list", GET_POST, h.fetch_list, s.FetchListQuery,
                     "List your jobs (free)", hosted=True),
        ProductRoute(f"{V1}/info", GET_POST, h.info, None, "Account balance and limits",
                     hosted=True),
        ProductRoute(f"{V1}/promptCheck", POST, h.prompt_check, s.PromptCheckRequest,
                     "Check a prompt (free)", hosted=True),
        ProductRoute("/midjourney/status", GET, h.status, None, "Service status per mode",
                     auth=False),
    ]
