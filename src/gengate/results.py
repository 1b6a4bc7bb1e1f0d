"""Copying an upstream's result files into gengate's own storage: bounded downloads,
retried, from the address that was checked. Each product decides what it stores
(``Product.store_result``) through the :class:`JobFiles` lent to it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from gengate.errors import GengateError, NotFound
from gengate.jobs import Job
from gengate.netguard import NetGuard, Target
from gengate.products.base import ResultFile
from gengate.products.registry import Registry, builtin
from gengate.providers.base import ProviderError, ProviderUpdate
from gengate.resultstores import ResultStores
from gengate.retry import RetryPolicy
from gengate.storage import Storage

__all__ = ["EXPIRED_PARENT", "JobFiles", "ResultWriter", "download", "result_files"]

MAX_DOWNLOAD = 50 * 1024 * 1024


async def download(client: httpx.AsyncClient, url: str, *, user_link: bool = False,
                   target: Target | None = None) -> bytes:
    """Fetch a file with a size bound; with ``target`` (a checked URL), from the address
    that was checked.

    A link the user gave (describe's ``url``) that fails is the user's ``[Invalid link!]``,
    which counts toward the illegal-prompt limit; an upstream's result that cannot be
    fetched is the upstream's ``[Bad response]`` and never counts against the user.
    """
    prefix = "[Invalid link!]" if user_link else "[Bad response] the upstream's result:"
    try:
        pinned = target.request_args() if target is not None else {"url": url}
        async with client.stream("GET", timeout=30.0, **pinned) as response:
            if response.status_code != 200:
                raise ProviderError(f"{prefix} {url} answered {response.status_code}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_DOWNLOAD:
                    raise ProviderError(f"{prefix} {url} is larger than 50 MB")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise ProviderError(f"{prefix} could not download {url}") from exc


#: Midjourney's split grid images, named after the base key (results stored before
#: ``files`` was kept derive their keys from them)
SPLIT_SUFFIXES = ("tl", "tr", "bl", "br")

#: an action on a job whose result files the retention pass deleted
EXPIRED_PARENT = "[Bad request] the parent job's result files expired and were deleted"


def result_files(result: dict[str, Any]) -> list[str]:
    """The keys of every file a job's result stored (results before ``files``: derived
    from ``key`` and the quadrant URLs)."""
    files = result.get("files")
    if isinstance(files, list):
        return [str(f) for f in files]
    key = result.get("key")
    if not key:
        return []
    stem = str(key).removesuffix(".png")
    quadrants = result.get("images") or []
    return [str(key), *(f"{stem}{suffix}.png" for suffix in SPLIT_SUFFIXES[:len(quadrants)])]


#: an upstream's CDN may blink: a result is fetched up to 3 times (about 1 s, then 4 s apart)
FETCH_RETRY = RetryPolicy(attempts=3, base=1.0, factor=4.0)


class ResultWriter:
    def __init__(self, storage: Storage, http: httpx.AsyncClient,
                 retry: RetryPolicy = FETCH_RETRY, products: Registry | None = None,
                 stores: ResultStores | None = None):
        self.products = products if products is not None else builtin()
        self.storage = storage
        self.http = http
        self.retry = retry
        self.stores = stores

    async def read_back(self, result: dict[str, Any]) -> bytes:
        """The stored image of an earlier job's ``result`` (an action's parent), from the
        store that holds it."""
        if result.get("expired"):
            raise ProviderError(EXPIRED_PARENT)
        key = result.get("key")
        if not key:
            raise ProviderError("[Bad response] the parent job has no stored image")
        if self.stores is None:
            return await self.storage.get(str(key))
        try:
            return await self.stores.get(str(key), result.get("store"))
        except NotFound:
            return await self.stores.get(str(key))

    async def fetch(self, url: str, guard: NetGuard | None) -> bytes:
        """A result file from ``url`` (bounded, retried; through ``guard`` if given)."""
        target = None
        if guard is not None:
            try:
                target = await guard.check(url, "imageUrl")
            except GengateError as exc:
                raise ProviderError(f"[Bad response] the upstream's result: {exc.message}") \
                    from None
        attempt = 1
        while True:
            try:
                return await download(self.http, url, target=target)
            except ProviderError:
                wait = self.retry.delay(attempt)
                if wait is None:
                    raise
                attempt += 1
                await asyncio.sleep(wait)

    async def write(self, job: Job, update: ProviderUpdate,
                    guard: NetGuard | None = None) -> dict[str, Any]:
        """Store the result's files as the job's product does; the job's ``result``. With
        ``guard`` (a user's own upstream), result URLs must pass it and are fetched from
        the address that was checked."""
        product = self.products.get(job.product)
        return await product.store_result(job, update, self.for_job(guard))

    def for_job(self, hosted_guard: NetGuard | None = None) -> JobFiles:
        """The :class:`~gengate.products.base.ResultIO` a product stores one job's result
        with; ``hosted_guard`` (a user's own upstream): result URLs must pass it."""
        return JobFiles(self, hosted_guard)


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp",
               "video/mp4": "mp4", "audio/mpeg": "mp3", "application/json": "json"}


class JobFiles:
    """Loads and saves the files of one job's result."""

    def __init__(self, writer: ResultWriter, guard: NetGuard | None):
        self._writer = writer
        self._guard = guard

    async def load(self, file: ResultFile) -> bytes:
        if file.data is not None:
            return file.data
        if not file.url:
            raise ProviderError(f"[Bad response] the upstream's {file.role} has no data")
        return await self._writer.fetch(file.url, self._guard)

    def key(self, job: Job, content_type: str, suffix: str = "") -> str:
        day = time.strftime("%Y%m%d", time.gmtime(job.created_at))
        ext = _EXTENSIONS.get(content_type, "bin")
        return f"{job.product}/{day}/{job.id}{suffix}.{ext}"

    @property
    def store_name(self) -> str:
        return self._writer.storage.name

    async def save(self, job: Job, data: bytes, content_type: str, suffix: str = "") -> str:
        return await self._writer.storage.put(self.key(job, content_type, suffix), data,
                                              content_type)
