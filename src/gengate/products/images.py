"""What the one-picture image products (Flux, GPT image, Gemini image, the OpenAI images API)
share: input images given as base64 are checked against the bounds of
:mod:`gengate.limits`, those given as URLs are downloaded when the job runs, a picture
without a client's seed has one derived from its job, and the result is one stored picture
whose real pixel size is recorded; fetch takes ``jobId`` from every kind of body."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import zlib
from typing import TYPE_CHECKING, Any, TypeVar

from PIL import Image
from pydantic import BaseModel, ValidationError

from gengate.api.forms import is_multipart, parse_multipart
from gengate.api.schemas import validation_message
from gengate.errors import BadRequest
from gengate.imaging.codec import decode_image
from gengate.jobs import Job
from gengate.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from gengate.products.base import Handler, Product, ResultIO, Services, TaskIO
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate

if TYPE_CHECKING:
    from gengate.api.call import Call

__all__ = ["MAX_JOB_ID", "ImageProduct", "decode_base64_input", "parse_request",
           "picture_seed"]

MAX_JOB_ID = 64
RequestT = TypeVar("RequestT", bound=BaseModel)


def decode_base64_input(value: str, label: str) -> bytes:
    """A base64 image (bare or a data URL), checked against the bounds; its bytes."""
    text = value.strip()
    if text[:5].lower() == "data:":
        text = text.partition(",")[2]
    compact = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{label}: is neither a URL nor valid base64") from None
    if not data:
        raise BadRequest(f"{label}: is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise BadRequest(f"{label}: image too large: the limit is {MAX_IMAGE_BYTES} bytes")
    decode_image(data, label, max_pixels=MAX_IMAGE_PIXELS)
    return data


def picture_seed(job_id: str, seed: int | None) -> int:
    """The client's seed, else one derived from the job (same job, same picture)."""
    return seed if seed is not None else zlib.crc32(job_id.encode())


def parse_request(model: type[RequestT], data: object) -> RequestT:
    """``data`` as a request model; 400 ``field: what is wrong`` otherwise."""
    if not isinstance(data, dict):
        raise BadRequest("body: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None


class ImageProduct(Product[Any]):
    """Base of a product whose job makes one picture. Its options may name input images
    by URL in ``image_urls`` (downloaded after the stored inputs, each checked against the
    outbound guard)."""

    #: the options field holding input image URLs
    urls_field = "image_urls"
    urls_label = "input_image"

    def fetch_route(self) -> Handler:
        """The fetch handler: ``jobId`` (or ``job_id``) from the query, a JSON body, an
        url-encoded form or a ``multipart/form-data`` form (TTAPI's Flux page shows one)."""
        from gengate.api.envelope import Raw

        async def fetch(services: Services, call: Call) -> Any:
            if call.method == "POST" and is_multipart(call.header(b"content-type")):
                form = parse_multipart(call.body, call.header(b"content-type"),
                                       max_file_bytes=0, max_files=0)
                job_id = form.fields.get("jobId") or form.fields.get("job_id")
                if not job_id:
                    raise BadRequest("jobId: is required")
            else:
                job_id = call.job_id()
            if len(job_id) > MAX_JOB_ID:
                raise BadRequest(f"jobId: at most {MAX_JOB_ID} characters")
            return Raw(await services.jobs.fetch_body(call.user_id, job_id, self.name))

        fetch.__doc__ = f"Fetch a {self.title} job (free)"
        return fetch

    async def task(self, job: Job, io: TaskIO, *, with_parent_image: bool) -> ProviderTask:
        task = await super().task(job, io, with_parent_image=with_parent_image)
        urls = task.options.get(self.urls_field) or []
        if not urls:
            return task
        downloaded = [await io.download(url, self.urls_label) for url in urls]
        return ProviderTask(job_id=task.job_id, action=task.action, prompt=task.prompt,
                            mode=task.mode, product=task.product, options=task.options,
                            images=(*task.images, *downloaded))

    async def store_result(self, job: Job, update: ProviderUpdate,
                           io: ResultIO) -> dict[str, Any]:
        if not update.files:
            raise ProviderError("[Bad response] the upstream returned no image")
        item = update.files[0]
        data = await io.load(item)
        try:
            width, height = await asyncio.to_thread(_size_of, data)
        except (OSError, ValueError, Image.DecompressionBombError):
            raise ProviderError("[Bad response] the upstream's image cannot be read") from None
        url = await io.save(job, data, item.content_type)
        return {"imageUrl": url, "source": item.url or url, "width": width, "height": height,
                **update.data}


def _size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size
