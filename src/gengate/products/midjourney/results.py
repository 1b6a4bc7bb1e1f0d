"""Midjourney's results: the grid or image stored (and split into ``tl/tr/bl/br`` when
asked), its size, aspect and the ``components`` (buttons) valid on it."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from gengate.jobs import Job
from gengate.products.base import ResultFile, ResultIO
from gengate.products.midjourney import imaging
from gengate.products.midjourney.actions import ACTIONS, ResultKind, components_for
from gengate.products.midjourney.options import MidjourneyOptions
from gengate.providers.base import ProviderError, ProviderUpdate
from gengate.results import SPLIT_SUFFIXES

__all__ = ["SPLIT_SUFFIXES", "result_kind", "store_result"]


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


async def store_result(job: Job, update: ProviderUpdate, store: ResultIO) -> dict[str, Any]:
    """Store the result's files and return the job's ``result``."""
    kind = result_kind(job.action)
    result: dict[str, Any] = {"kind": kind.value, "components": [], "seed": update.seed,
                              "prompts": list(update.prompts) or None, "images": None}
    data = update.image
    if data is None and update.image_url:
        data = await store.load(ResultFile("image", url=update.image_url))
    if data is None:
        if kind in (ResultKind.TEXT, ResultKind.SEED):
            return result
        raise ProviderError("[Bad response] the upstream returned no image")
    split = kind is ResultKind.GRID and job.get_u_images
    try:
        info = await asyncio.to_thread(_inspect, data, split)
    except (OSError, ValueError) as exc:
        raise ProviderError("[Bad response] the upstream returned a broken image") from exc
    url = await store.save(job, data, "image/png")
    key = store.key(job, "image/png")
    files = [key]
    if split:
        files += [store.key(job, "image/png", suffix) for suffix in SPLIT_SUFFIXES]
        result["images"] = [
            await store.save(job, part, "image/png", suffix)
            for suffix, part in zip(SPLIT_SUFFIXES, info.parts, strict=True)
        ]
    width, height = info.size
    result.update({
        "key": key, "store": store.store_name, "files": files, "cdnImage": url,
        "discordImage": update.image_url or url, "width": width, "height": height,
        "aspect": list(imaging.aspect_of(info.size if kind is not ResultKind.GRID
                                         else (width // 2, height // 2))),
        "components": _offered(components_for(
            kind, version=str(MidjourneyOptions.from_json(job.params).version),
            width=width, height=height, action=job.action), update),
    })
    return result


def _offered(components: list[str], update: ProviderUpdate) -> list[str]:
    """The components the upstream account can run too, when it says which it can
    (``data["actions"]``): an action it cannot run is never offered, so never charged."""
    actions = update.data.get("actions")
    if not isinstance(actions, list):
        return components
    return [c for c in components if c in actions]
