"""The Gemini video product (TTAPI's channel): ``POST /gemini/video/generations``,
``GET /gemini/video/fetch`` with its own status set (``RUNNING | SUCCESS | FAILED``) and
snake_case ``data`` (``video_url``); the local video renderer; TTAPI relays it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field

from gengate.api import schemas as s
from gengate.api.schemas import _Wire
from gengate.jobs import Job, JobStatus, new_job_id
from gengate.limits import MAX_URL_CHARS
from gengate.products.base import (
    GET,
    POST,
    RUNNING_STATUSES,
    AdapterContext,
    AdapterFactory,
    JobRequest,
    LocalRenderer,
    Options,
    Product,
    ProductRoute,
    Services,
    StatusSet,
    fetch_handler,
    submitted,
)
from gengate.products.videos import output_url, quota_text

if TYPE_CHECKING:
    from gengate.api.call import Call
    from gengate.providers.base import Provider, ProviderTask

__all__ = ["PRODUCT", "GeminiVideoOptions", "GeminiVideoProduct", "GeminiVideoRequest"]

#: [infer] the contract names no duration or resolution; Google's Veo makes 8 s at 720p
SECONDS = 8
_SIZES = {"16:9": (1280, 720), "9:16": (720, 1280)}
#: per video ([infer] the fetch example charges "1")
PRICES: dict[str, float] = {"generations:omni-flash": 1}


@dataclass(frozen=True, slots=True)
class GeminiVideoOptions(Options):
    model: str = "omni-flash"
    aspect_ratio: str = "16:9"
    reference_images: tuple[str, ...] | list[str] = ()
    width: int = 1280
    height: int = 720
    duration: int = SECONDS
    seed: int = 0


class GeminiVideoRequest(_Wire):
    """POST /gemini/video/generations"""

    prompt: str = Field(min_length=1, max_length=4000)
    model: Literal["omni-flash"] = "omni-flash"
    aspect_ratio: Literal["16:9", "9:16"] = Field(description="16:9 (1280x720) or 9:16")
    reference_images: list[Annotated[str, Field(max_length=MAX_URL_CHARS)]] | None = Field(
        None, max_length=8, description="Image or video URLs")
    hookUrl: str | None = Field(None, max_length=2048)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="gengate extension")
    timeout: int | None = None


def gemini_body(task: ProviderTask) -> dict[str, Any]:
    """TTAPI's fields for a Gemini video job."""
    options = GeminiVideoOptions.from_json(task.options)
    body: dict[str, Any] = {"prompt": task.prompt, "model": options.model,
                            "aspect_ratio": options.aspect_ratio}
    if options.reference_images:
        body["reference_images"] = list(options.reference_images)
    return body


def _ttapi(ctx: AdapterContext) -> Provider:
    from gengate.providers.ttapi_video import TtapiVideoProvider, TtapiVideoWire

    wire = TtapiVideoWire("/gemini/video/generations", "/gemini/video/fetch", gemini_body,
                          "video_url", "thumbnail_url")
    return TtapiVideoProvider(wire, ctx.base_url, api_key=ctx.secrets.get("apiKey", ""),
                              http=ctx.http, poll_interval=ctx.poll_interval,
                              timeout=ctx.timeout)


class GeminiVideoProduct(Product[GeminiVideoOptions]):
    name = "gemini_video"
    title = "Gemini video"
    options_type = GeminiVideoOptions
    statuses: ClassVar[StatusSet] = RUNNING_STATUSES
    default_prices = PRICES
    fetch_path = "/gemini/video/fetch"

    def routes(self) -> Sequence[ProductRoute]:
        return [
            ProductRoute("/gemini/video/generations", POST, self._generate,
                         GeminiVideoRequest, "Make a Gemini video"),
            ProductRoute("/gemini/video/fetch", GET, fetch_handler(self), None,
                         "Fetch a Gemini video job (free)"),
        ]

    async def _generate(self, services: Services, call: Call) -> Any:
        req: GeminiVideoRequest = s.parse(GeminiVideoRequest, call.data())  # type: ignore
        for url in req.reference_images or ():
            await services.jobs.check_url(url, "reference_images")
        job_id = new_job_id()
        width, height = _SIZES[req.aspect_ratio]
        options = GeminiVideoOptions(
            model=req.model, aspect_ratio=req.aspect_ratio,
            reference_images=tuple(req.reference_images or ()), width=width, height=height,
            seed=req.seed if req.seed is not None else int(job_id.replace("-", "")[:8], 16))
        sub = call.submit(hook_url=req.hookUrl, timeout=req.timeout)
        job = await services.jobs.submit(self, sub, JobRequest(
            action="generations", variant=req.model, options=options, prompt=req.prompt,
            job_id=job_id))
        return submitted(job)

    def fetch_body(self, job: Job) -> dict[str, Any]:
        options = self.options(job)
        return {
            "status": self.statuses.wire(job.status),
            "message": job.message if job.status is JobStatus.FAILED else "",
            "jobId": job.id,
            "data": {
                "jobId": job.id, "model": options.model, "prompt": job.prompt,
                "aspect_ratio": options.aspect_ratio,
                "reference_images": list(options.reference_images) or None,
                "video_url": output_url(job, "video"),
                "thumbnail_url": output_url(job, "thumbnail"),
                "quota": quota_text(job), "hookUrl": job.hook_url,
            },
        }

    def renderer(self) -> LocalRenderer:
        from gengate.providers.video import VideoRenderer

        return VideoRenderer()

    def adapters(self) -> Mapping[str, AdapterFactory]:
        return {"ttapi": _ttapi}


PRODUCT = GeminiVideoProduct()
