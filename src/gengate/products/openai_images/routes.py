"""OpenAI images' front: ``/v1/images/generations`` (JSON), ``/v1/images/edits``
(``multipart/form-data``) and ``/v1/images/fetch``.

Each request is one job (``n`` images, priced ``n`` times the model's entry), held open
until the job ends; the answer is OpenAI's ``ImagesResponse``. Past
``GENGATE_SYNC_TIMEOUT`` it is a 504 in OpenAI's error format with the ``job_id``, and an
``x-should-retry`` header the official SDKs obey: ``true`` when the request carries an
``Idempotency-Key`` (the retry re-attaches to the job), ``false`` otherwise (a retry would
be a second job, paid again)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

import orjson

from gengate.api.forms import parse_multipart
from gengate.errors import BadRequest, GatewayTimeout
from gengate.imaging.codec import decode_image
from gengate.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from gengate.products.base import JobRequest, Services
from gengate.products.images import parse_request
from gengate.products.openai_images.options import GPT_MODELS, OpenAIImagesOptions, checked
from gengate.products.openai_images.requests import ImagesGenerateRequest

if TYPE_CHECKING:
    from gengate.api.call import Call
    from gengate.products.openai_images.product import OpenAIImagesProduct

__all__ = ["OpenAIImagesRoutes"]

#: GPT image models edit up to 16 images (dall-e-2: one)
MAX_EDIT_IMAGES = 16


def _options(req: ImagesGenerateRequest, first: tuple[int, int] | None = None
             ) -> OpenAIImagesOptions:
    return checked(model=req.model, prompt=req.prompt, n=req.n, size=req.size,
                   quality=req.quality, background=req.background,
                   output_format=req.output_format, output_compression=req.output_compression,
                   response_format=req.response_format, style=req.style,
                   moderation=req.moderation, first_image=first)


class OpenAIImagesRoutes:
    """The handlers, bound to the product object."""

    def __init__(self, product: OpenAIImagesProduct):
        self.product = product

    async def generations(self, services: Services, call: Call) -> Any:
        req = parse_request(ImagesGenerateRequest, call.data())
        options = _options(req)
        return await self._run(services, call, "generations", req.prompt, options, [], None)

    async def edits(self, services: Services, call: Call) -> Any:
        form = parse_multipart(call.body, call.header(b"content-type"),
                               max_file_bytes=MAX_IMAGE_BYTES, max_files=MAX_EDIT_IMAGES + 1)
        req = parse_request(ImagesGenerateRequest, dict(form.fields))
        images = form.uploads("image", "image[]")
        masks = form.uploads("mask")
        if not images:
            raise BadRequest("image: is required (one file, or up to 16 as image[])")
        sizes = await services.jobs.decode(_check, [f.data for f in images], "image")
        if masks:
            if len(masks) > 1:
                raise BadRequest("mask: one file at most")
            mask = (await services.jobs.decode(_check, [masks[0].data], "mask"))[0]
            if mask != sizes[0]:
                raise BadRequest("mask: must have the same dimensions as the first image")
        options = _options(req, sizes[0])
        most = MAX_EDIT_IMAGES if options.model in GPT_MODELS else 1
        if len(images) > most:
            raise BadRequest(f"image: at most {most} for {options.model}")
        options = dataclasses.replace(options, mask=bool(masks))
        inputs = [f.data for f in images] + [m.data for m in masks]
        # what an Idempotency-Key stands for: the fields and files, not the boundary
        fingerprint = orjson.dumps([sorted(form.fields.items()),
                                    [hashlib.sha256(d).hexdigest() for d in inputs]])
        return await self._run(services, call, "edits", req.prompt, options, inputs,
                               fingerprint)

    async def _run(self, services: Services, call: Call, action: str, prompt: str,
                   options: OpenAIImagesOptions, inputs: list[bytes],
                   fingerprint: bytes | None) -> Any:
        keyed = call.header(b"idempotency-key") is not None
        job = await services.jobs.submit(
            self.product, call.submit(fingerprint=fingerprint),
            JobRequest(action, options.model, options, prompt=prompt, inputs=inputs,
                       count=options.n))
        try:
            ended = await services.jobs.wait(call.user_id, job.id, services.jobs.sync_timeout)
        except GatewayTimeout as exc:
            raise GatewayTimeout(exc.message, data=exc.data, headers={
                "x-should-retry": "true" if keyed else "false",
                "x-gengate-job-id": job.id}) from None
        return await self.product.answer(services, ended)


def _check(images: list[bytes], label: str) -> list[tuple[int, int]]:
    sizes = []
    for index, data in enumerate(images):
        name = label if len(images) == 1 else f"{label}[{index}]"
        sizes.append(decode_image(data, name, max_pixels=MAX_IMAGE_PIXELS).size)
    return sizes
