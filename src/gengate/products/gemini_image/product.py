"""The Gemini image product object: statuses, prices, the synchronous answer, the fetch
body, renderer and adapters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from gengate.clock import timestamp
from gengate.errors import UpstreamError
from gengate.jobs import Job, JobStatus, Mode
from gengate.products.base import (
    GET_POST,
    POST,
    AdapterContext,
    AdapterFactory,
    LocalRenderer,
    ProductRoute,
)
from gengate.products.gemini_image.options import MODELS, GeminiImageOptions
from gengate.products.gemini_image.render import GeminiImageRenderer
from gengate.products.gemini_image.requests import (
    GeminiFetchRequest,
    GeminiImageAnswer,
    GeminiImageRequest,
)
from gengate.products.gemini_image.routes import GeminiImageRoutes
from gengate.products.images import ImageProduct
from gengate.providers.gemini import GoogleGeminiProvider
from gengate.providers.ttapi_gemini import TtapiGeminiProvider
from gengate.quota import from_milli

__all__ = ["PRODUCT", "GeminiImageProduct"]

#: quota per image (TTAPI's example answer shows 2)
PRICES = dict.fromkeys(MODELS, 2)


class GeminiImageProduct(ImageProduct):
    name = "gemini_image"
    title = "Gemini image"
    options_type = GeminiImageOptions
    default_prices: ClassVar[Mapping[str, float]] = {
        f"generate:{model}": price for model, price in PRICES.items()}
    lanes = (Mode.FAST,)
    fetch_path = "/gemini/image/fetch"
    urls_label = "refer_images"

    def routes(self) -> Sequence[ProductRoute]:
        handlers = GeminiImageRoutes(self)
        return (
            ProductRoute("/gemini/image/generate", POST, handlers.generate, GeminiImageRequest,
                         "Generate a Gemini image (synchronous: answers when it is made; "
                         "504 with the jobId past GENGATE_SYNC_TIMEOUT)", sync=True,
                         answer_model=GeminiImageAnswer, images=True),
            ProductRoute("/gemini/image/fetch", GET_POST, self.fetch_route(),
                         GeminiFetchRequest, "Fetch a Gemini image job (free)"),
        )

    def _data(self, job: Job) -> dict[str, Any]:
        options: GeminiImageOptions = self.options(job)
        _, quota = job.charged()
        return {"prompt": job.prompt, "refer_images": list(options.refer_images),
                "image_url": job.result.get("imageUrl"), "quota": from_milli(quota)}

    def answer(self, job: Job) -> dict[str, Any]:
        """The synchronous answer of an ended job: TTAPI's body on success; a failed job
        (refunded) is a 500 in the TTAPI envelope with its message and jobId."""
        if job.status is not JobStatus.SUCCESS:
            raise UpstreamError(job.message or "generation failed",
                                data={"jobId": job.id, "job_id": job.id})
        return {"status": "SUCCESS", "message": "success", "jobId": job.id,
                "data": self._data(job)}

    def fetch_body(self, job: Job) -> dict[str, Any]:
        """The fetch answer and webhook body: the synchronous answer's ``data`` plus the
        pixel size, finish time and hook_url; ``quota`` is a number, as in that answer."""
        options: GeminiImageOptions = self.options(job)
        if job.status is JobStatus.SUCCESS:
            message: str | None = "success"
        else:
            message = job.message if job.status is JobStatus.FAILED else None
        data = {**self._data(job), "model": options.model,
                "aspect_ratio": options.aspect_ratio, "image_size": options.image_size,
                "width": job.result.get("width"), "height": job.result.get("height"),
                "finishTime": timestamp(job.finished_at), "hook_url": job.hook_url}
        return {"status": self.statuses.wire(job.status), "message": message, "jobId": job.id,
                "data": data}

    def renderer(self) -> LocalRenderer:
        return GeminiImageRenderer()

    def adapters(self) -> Mapping[str, AdapterFactory]:
        return {"ttapi": ttapi_adapter, "google": google_adapter}


def ttapi_adapter(ctx: AdapterContext) -> TtapiGeminiProvider:
    """A TTAPI-compatible account: its synchronous ``/gemini/image/generate``."""
    return TtapiGeminiProvider(ctx.base_url, api_key=ctx.secrets.get("apiKey", ""),
                               http=ctx.http, poll_interval=ctx.poll_interval)


def google_adapter(ctx: AdapterContext) -> GoogleGeminiProvider:
    """A Google AI Studio key: the Gemini API's ``generateContent``."""
    return GoogleGeminiProvider(ctx.base_url or "https://generativelanguage.googleapis.com",
                                api_key=ctx.secrets.get("apiKey", ""), http=ctx.http,
                                poll_interval=ctx.poll_interval)


PRODUCT = GeminiImageProduct()
