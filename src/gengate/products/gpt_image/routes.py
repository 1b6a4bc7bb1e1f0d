"""GPT image's front: ``/openai/gpt/generations`` and ``/fetch``, and the legacy
``/openai/4o-image/generations`` and ``/fetch``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gengate.errors import BadRequest
from gengate.products.base import JobRequest, Services, submitted
from gengate.products.gpt_image.options import GptImageOptions, pixel_size
from gengate.products.gpt_image.requests import (
    MAX_URL,
    FourOImageRequest,
    GptGenerationsRequest,
)
from gengate.products.images import parse_request

if TYPE_CHECKING:
    from gengate.api.call import Call
    from gengate.products.gpt_image.product import GptImageProduct

__all__ = ["GptImageRoutes"]


class GptImageRoutes:
    """The handlers, bound to the product object."""

    def __init__(self, product: GptImageProduct):
        self.product = product

    async def generations(self, services: Services, call: Call) -> dict[str, Any]:
        req = parse_request(GptGenerationsRequest, call.data())
        width, height = pixel_size(req.model, req.aspect_ratio, req.size)
        options = GptImageOptions(model=req.model, width=width, height=height,
                                  aspect_ratio=req.aspect_ratio, size=req.size,
                                  image_urls=await _refer_images(services, req.referImages))
        return await self._submit(services, call, options, req.prompt, req.hookUrl, req.timeout)

    async def four_o(self, services: Services, call: Call) -> dict[str, Any]:
        req = parse_request(FourOImageRequest, call.data())
        options = GptImageOptions(model="gpt-4o-image",
                                  image_urls=await _refer_images(services, req.referImages))
        return await self._submit(services, call, options, req.prompt, req.hookUrl, req.timeout)

    async def _submit(self, services: Services, call: Call, options: GptImageOptions,
                      prompt: str, hook_url: str | None, timeout: int | None) -> dict[str, Any]:
        job = await services.jobs.submit(
            self.product, call.submit(hook_url=hook_url, timeout=timeout),
            JobRequest("generations", options.model, options, prompt=prompt))
        return submitted(job)


async def _refer_images(services: Services, urls: list[str] | None) -> tuple[str, ...]:
    """Each reference is an http(s) URL gengate may fetch (downloaded when the job runs)."""
    checked = []
    for index, url in enumerate(urls or ()):
        name = f"referImages[{index}]"
        if not isinstance(url, str) or len(url) > MAX_URL or not url.startswith(
                ("http://", "https://")):
            raise BadRequest(f"{name}: must be an http(s) URL of at most {MAX_URL} characters")
        await services.jobs.check_url(url, name)
        checked.append(url)
    return tuple(checked)
