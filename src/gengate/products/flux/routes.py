"""Flux's front: ``/flux/generate``, ``/flux/edits``, ``/bfl/v1/flux-kontext-{pro,max}`` and
``/flux/fetch``. Each handler checks its request, works out the picture's pixel size and
hands the engine one job (``flux:<action>:<mode>`` prices it)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gengate.api.forms import parse_multipart
from gengate.errors import BadRequest
from gengate.imaging.codec import decode_image
from gengate.imaging.picture import fit_area, parse_ratio
from gengate.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from gengate.products.base import JobRequest, Services, submitted
from gengate.products.flux.options import AREA, EDIT_MODES, FluxOptions, pixel_size
from gengate.products.flux.requests import (
    BflRequest,
    FluxEditsForm,
    FluxGenerateRequest,
)
from gengate.products.images import decode_base64_input, parse_request

if TYPE_CHECKING:
    from gengate.api.call import Call
    from gengate.products.flux.product import FluxProduct

__all__ = ["FluxRoutes"]

_BFL_IMAGES = ("input_image", "input_image_2", "input_image_3", "input_image_4")


class FluxRoutes:
    """The handlers, bound to the product object."""

    def __init__(self, product: FluxProduct):
        self.product = product

    async def generate(self, services: Services, call: Call) -> dict[str, Any]:
        req = parse_request(FluxGenerateRequest, call.data())
        width, height = pixel_size(req.size, req.aspect_ratio)
        options = FluxOptions(model=req.mode, width=width, height=height, size=req.size,
                              aspect_ratio=req.aspect_ratio)
        job = await services.jobs.submit(
            self.product, call.submit(hook_url=req.hookUrl, timeout=req.timeout),
            JobRequest("generate", req.mode, options, prompt=req.prompt))
        return submitted(job)

    async def edits(self, services: Services, call: Call) -> dict[str, Any]:
        form = parse_multipart(call.body, call.header(b"content-type"),
                               max_file_bytes=MAX_IMAGE_BYTES, max_files=8)
        req = parse_request(FluxEditsForm, form.fields)
        uploads = form.uploads("image", "image[]")
        if not uploads:
            raise BadRequest("image: at least one image file is required")
        most = EDIT_MODES.get(req.mode)
        if most is None:
            raise BadRequest(f"mode: {req.mode} cannot edit images; use one of "
                             f"{', '.join(EDIT_MODES)}")
        if len(uploads) > most:
            raise BadRequest(f"image: {req.mode} takes at most {most} images")
        sizes = await asyncio.to_thread(_check_images, [u.data for u in uploads], "image")
        width, height = pixel_size(req.size, req.aspect_ratio, sizes[0])
        options = FluxOptions(model=req.mode, width=width, height=height, size=req.size,
                              aspect_ratio=req.aspect_ratio)
        job = await services.jobs.submit(
            self.product, call.submit(hook_url=req.hookUrl, timeout=req.timeout),
            JobRequest("edits", req.mode, options, prompt=req.prompt,
                       inputs=[u.data for u in uploads]))
        return submitted(job)

    def bfl(self, model: str) -> Any:
        async def kontext(services: Services, call: Call) -> dict[str, Any]:
            return await self._bfl(model, services, call)

        kontext.__doc__ = f"Black Forest Labs' format: {model}"
        return kontext

    async def _bfl(self, model: str, services: Services, call: Call) -> dict[str, Any]:
        req = parse_request(BflRequest, call.data())
        inputs: list[bytes] = []
        urls: list[str] = []
        for name in _BFL_IMAGES:
            value = getattr(req, name)
            if value is None:
                continue
            if value.startswith(("http://", "https://")):
                await services.jobs.check_url(value, name)
                urls.append(value)
            else:
                inputs.append(await asyncio.to_thread(decode_base64_input, value, name))
        ratio = None
        if req.aspect_ratio is not None:
            ratio = parse_ratio(req.aspect_ratio)
            if ratio is None or not 9 / 21 <= ratio[0] / ratio[1] <= 21 / 9:
                raise BadRequest("aspect_ratio: must be W:H between 21:9 and 9:21")
        if ratio is not None:
            width, height = fit_area(ratio, AREA, 32)
        else:
            first = (await asyncio.to_thread(_check_images, inputs[:1], "input_image")
                     if inputs else [None])[0]
            width, height = pixel_size(None, None, first)
        options = FluxOptions(model=model, width=width, height=height,
                              aspect_ratio=req.aspect_ratio, front="bfl", seed=req.seed,
                              output_format=req.output_format,
                              prompt_upsampling=req.prompt_upsampling,
                              safety_tolerance=req.safety_tolerance, image_urls=tuple(urls))
        job = await services.jobs.submit(
            self.product, call.submit(hook_url=req.webhook_url),
            JobRequest("generate", model, options, prompt=req.prompt, inputs=inputs))
        return submitted(job)


def _check_images(images: list[bytes], label: str) -> list[tuple[int, int]]:
    """Each image decodes within the pixel bound; their sizes."""
    sizes = []
    for index, data in enumerate(images):
        name = label if len(images) == 1 else f"{label}[{index}]"
        sizes.append(decode_image(data, name, max_pixels=MAX_IMAGE_PIXELS).size)
    return sizes
