"""The GPT image product object: statuses, prices, the fetch body, renderer and adapters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from gengate.clock import timestamp
from gengate.jobs import Job, JobStatus, Mode
from gengate.products.base import (
    GET_POST,
    POST,
    THREE_STATUSES,
    AdapterContext,
    AdapterFactory,
    LocalRenderer,
    ProductRoute,
    StatusSet,
)
from gengate.products.gpt_image.options import MODELS, GptImageOptions
from gengate.products.gpt_image.render import GptImageRenderer
from gengate.products.gpt_image.requests import (
    FourOImageRequest,
    GptFetchRequest,
    GptGenerationsRequest,
)
from gengate.products.gpt_image.routes import GptImageRoutes
from gengate.products.images import ImageProduct
from gengate.providers.base import ProviderTask
from gengate.providers.openai_images import openai_images_adapter
from gengate.providers.ttapi_relay import RelayRequest, TtapiRelayProvider
from gengate.quota import from_milli

__all__ = ["PRODUCT", "GptImageProduct"]

#: quota per image by model (TTAPI's example: 2 for the 4o image)
PRICES = {"gpt-4o-image": 2, "gpt-image-1": 2, "gpt-image-1.5": 3, "gpt-image-2": 3,
          "gpt-image-2-plus": 4}


class GptImageProduct(ImageProduct):
    name = "gpt_image"
    title = "GPT image"
    options_type = GptImageOptions
    statuses: ClassVar[StatusSet] = THREE_STATUSES
    default_prices: ClassVar[Mapping[str, float]] = {
        f"generations:{model}": price for model, price in PRICES.items()}
    lanes = (Mode.FAST,)
    fetch_path = "/openai/gpt/fetch"
    urls_label = "referImages"

    def routes(self) -> Sequence[ProductRoute]:
        handlers = GptImageRoutes(self)
        fetch = self.fetch_route()
        return (
            ProductRoute("/openai/gpt/generations", POST, handlers.generations,
                         GptGenerationsRequest, "Submit a GPT image job"),
            ProductRoute("/openai/gpt/fetch", GET_POST, fetch, GptFetchRequest,
                         "Fetch a GPT image job (free)"),
            ProductRoute("/openai/4o-image/generations", POST, handlers.four_o,
                         FourOImageRequest, "Submit a 4o image job (legacy; gpt-4o-image)"),
            ProductRoute("/openai/4o-image/fetch", GET_POST, fetch, GptFetchRequest,
                         "Fetch a 4o image job (legacy; free)"),
        )

    def fetch_body(self, job: Job) -> dict[str, Any]:
        options: GptImageOptions = self.options(job)
        _, quota = job.charged()
        if job.status is JobStatus.SUCCESS:
            message: str | None = "success"
        elif job.status is JobStatus.FAILED:
            message = job.message
        else:
            message = None  # the contract: null while the job runs
        data = {"prompt": job.prompt, "referImages": list(options.image_urls) or None,
                "imageUrl": job.result.get("imageUrl"), "quota": str(from_milli(quota)),
                "finishTime": timestamp(job.finished_at), "hookUrl": job.hook_url}
        return {"status": self.statuses.wire(job.status), "message": message, "jobId": job.id,
                "data": data}

    def renderer(self) -> LocalRenderer:
        return GptImageRenderer()

    def adapters(self) -> Mapping[str, AdapterFactory]:
        return {"openai": openai_images_adapter, "ttapi": ttapi_adapter}


def ttapi_adapter(ctx: AdapterContext) -> TtapiRelayProvider:
    """A TTAPI-compatible account relays GPT image jobs to ``/openai/gpt/generations``."""
    return TtapiRelayProvider(ctx.base_url, api_key=ctx.secrets.get("apiKey", ""),
                              http=ctx.http, build=relay_request,
                              fetch_path="/openai/gpt/fetch", poll_interval=ctx.poll_interval)


def relay_request(task: ProviderTask) -> RelayRequest:
    """The fields the client sent; reference images travel as their URLs."""
    options = GptImageOptions.from_json(task.options)
    body: dict[str, Any] = {"prompt": task.prompt, "model": options.model}
    if options.image_urls:
        body["referImages"] = list(options.image_urls)
    if options.aspect_ratio:
        body["aspect_ratio"] = options.aspect_ratio
    if options.size:
        body["size"] = f"{options.width}x{options.height}"
    return RelayRequest("/openai/gpt/generations", json=body)


assert set(PRICES) == set(MODELS)
PRODUCT = GptImageProduct()
