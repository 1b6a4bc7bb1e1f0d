"""Gemini image's front: the synchronous ``/gemini/image/generate`` and ``/fetch``.

``generate`` admits one job like every other product's submit, then (``sync_return``, the
default) holds the request until the job ends: the answer is TTAPI's synchronous body,
or 504 with the jobId past ``GENGATE_SYNC_TIMEOUT`` while the job goes on. With
``sync_return=false`` it answers the jobId at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gengate.errors import BadRequest
from gengate.products.base import JobRequest, Services, submitted
from gengate.products.gemini_image.options import GeminiImageOptions, pixel_size
from gengate.products.gemini_image.requests import GeminiImageRequest
from gengate.products.images import decode_base64_input, parse_request

if TYPE_CHECKING:
    from gengate.api.call import Call
    from gengate.products.gemini_image.product import GeminiImageProduct

__all__ = ["GeminiImageRoutes"]

MAX_URL = 2083


class GeminiImageRoutes:
    """The handlers, bound to the product object."""

    def __init__(self, product: GeminiImageProduct):
        self.product = product

    async def generate(self, services: Services, call: Call) -> dict[str, Any]:
        req = parse_request(GeminiImageRequest, call.data())
        ratio, size, width, height = pixel_size(req.model, req.aspect_ratio, req.image_size)
        urls: list[str] = []
        inputs: list[bytes] = []
        for index, ref in enumerate(req.refer_images or ()):
            name = f"refer_images[{index}]"
            if ref.startswith(("http://", "https://")):
                if len(ref) > MAX_URL:
                    raise BadRequest(f"{name}: at most {MAX_URL} characters")
                await services.jobs.check_url(ref, name)
                urls.append(ref)
            else:
                inputs.append(await services.jobs.decode(decode_base64_input, ref, name))
        options = GeminiImageOptions(
            model=req.model, aspect_ratio=ratio, image_size=size, width=width, height=height,
            image_urls=tuple(urls), refer_images=tuple(urls),
            google_search=req.google_search, image_search=req.image_search,
            thinking_level=req.thinking_level.capitalize() if req.thinking_level else None,
            sync_return=req.sync_return)
        job = await services.jobs.submit(
            self.product, call.submit(hook_url=req.hook_url, timeout=req.timeout,
                                      sync=req.sync_return),
            JobRequest("generate", req.model, options, prompt=req.prompt, inputs=inputs))
        if not req.sync_return:
            return submitted(job)
        ended = await services.jobs.wait(call.user_id, job.id, services.jobs.sync_timeout)
        return self.product.answer(ended)
