"""What the one-picture image products (Flux, GPT image) share: a job's input images given
as URLs are downloaded when it runs, and its result is one stored picture whose real pixel
size is recorded."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image

from gengate.jobs import Job
from gengate.products.base import Product, ResultIO, TaskIO
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate

__all__ = ["ImageProduct"]


class ImageProduct(Product[Any]):
    """Base of a product whose job makes one picture. Its options may name input images
    by URL in ``image_urls`` (downloaded after the stored inputs, each checked against the
    outbound guard)."""

    #: the options field holding input image URLs
    urls_field = "image_urls"
    urls_label = "input_image"

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
