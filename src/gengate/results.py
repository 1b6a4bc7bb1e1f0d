"""Turning an upstream's answer into a stored result: files copied, grid split, the
``components`` of what was made."""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from gengate.errors import GengateError
from gengate.jobs import ACTIONS, Job, ResultKind, components_for
from gengate.netguard import NetGuard, Target
from gengate.products.midjourney import imaging
from gengate.providers.base import ProviderError, ProviderUpdate
from gengate.retry import RetryPolicy
from gengate.storage import Storage

__all__ = ["ResultWriter", "result_kind"]

SPLIT_SUFFIXES = ("tl", "tr", "bl", "br")
MAX_DOWNLOAD = 50 * 1024 * 1024


def result_kind(action: str) -> ResultKind:
    if action in ("imagine", "blend"):
        return ResultKind.GRID
    if action == "describe":
        return ResultKind.TEXT
    if action == "seed":
        return ResultKind.SEED
    return ACTIONS[action].produces


@dataclass(frozen=True, slots=True)
class _Split:
    size: tuple[int, int]
    parts: list[bytes]


def _inspect(data: bytes, split: bool) -> _Split:
    image = Image.open(io.BytesIO(data))
    if not split:
        return _Split(image.size, [])
    image.load()
    return _Split(image.size, [imaging.encode_png(p) for p in imaging.split_grid(image)])


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


#: an upstream's CDN may blink: a result is fetched up to 3 times (about 1 s, then 4 s apart)
FETCH_RETRY = RetryPolicy(attempts=3, base=1.0, factor=4.0)


class ResultWriter:
    def __init__(self, storage: Storage, http: httpx.AsyncClient,
                 retry: RetryPolicy = FETCH_RETRY):
        self.storage = storage
        self.http = http
        self.retry = retry

    async def _fetch(self, url: str, guard: NetGuard | None) -> bytes:
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
        """Store the result's files and return the job's ``result``. With ``guard`` (a
        user's own upstream), the result's URL must pass it and is fetched from the
        address that was checked."""
        kind = result_kind(job.action)
        result: dict[str, Any] = {"kind": kind.value, "components": [], "seed": update.seed,
                                  "prompts": list(update.prompts) or None, "images": None}
        data = update.image
        if data is None and update.image_url:
            data = await self._fetch(update.image_url, guard)
        if data is None:
            if kind in (ResultKind.TEXT, ResultKind.SEED):
                return result
            raise ProviderError("[Bad response] the upstream returned no image")
        split = kind is ResultKind.GRID and job.get_u_images
        try:
            info = await asyncio.to_thread(_inspect, data, split)
        except (OSError, ValueError) as exc:
            raise ProviderError("[Bad response] the upstream returned a broken image") from exc
        day = time.strftime("%Y%m%d", time.gmtime(job.created_at))
        key = f"midjourney/{day}/{job.id}.png"
        url = await self.storage.put(key, data, "image/png")
        if split:
            result["images"] = [
                await self.storage.put(f"midjourney/{day}/{job.id}{suffix}.png", part,
                                       "image/png")
                for suffix, part in zip(SPLIT_SUFFIXES, info.parts, strict=True)
            ]
        width, height = info.size
        result.update({
            "key": key, "cdnImage": url, "discordImage": update.image_url or url,
            "width": width, "height": height,
            "aspect": list(imaging.aspect_of(info.size if kind is not ResultKind.GRID
                                             else (width // 2, height // 2))),
            "components": components_for(kind, version=str(job.params.get("version", "7")),
                                         width=width, height=height, action=job.action),
        })
        return result
