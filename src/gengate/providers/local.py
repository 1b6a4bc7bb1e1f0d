"""The built-in ``local`` upstream: real images rendered on this machine.

It behaves like a remote upstream: ``submit`` records the task (on disk, so a worker that
dies does not lose it) and answers a task id; ``poll`` reports progress over the configured
delay and then the rendered result. Every action is a real image operation from
:mod:`gengate.imaging`.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from PIL import Image

from gengate.products.midjourney import imaging
from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)

__all__ = ["LocalProvider"]



class LocalProvider:
    """Renders with Pillow; ``delay`` seconds per job in ``steps`` progress steps."""

    name = "local"
    wants_parent_image = True

    def __init__(self, root: Path, *, delay: float = 0.0, steps: int = 4,
                 fail_marker: str | None = None, hang_marker: str | None = None,
                 fail_message: str = "[Internal error] Something went wrong",
                 scale: float = 1.0):
        self.root = root
        self.delay = delay
        self.steps = steps
        self.fail_marker = fail_marker
        self.hang_marker = hang_marker
        self.fail_message = fail_message
        self.scale = scale
        self.poll_interval = delay / steps if delay else 0.0

    def _dir(self, upstream_id: str) -> Path:
        if not upstream_id.isalnum():
            raise ProviderError("[Bad response] unknown task", kind=FailureKind.LOST)
        return self.root / upstream_id

    async def submit(self, task: ProviderTask) -> str:
        upstream_id = uuid.uuid4().hex
        await asyncio.to_thread(self._save, upstream_id, task)
        return upstream_id

    def _save(self, upstream_id: str, task: ProviderTask) -> None:
        folder = self._dir(upstream_id)
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(task.images):
            (folder / f"in{i}.bin").write_bytes(data)
        spec = {
            "job_id": task.job_id, "action": task.action, "prompt": task.prompt,
            "mode": task.mode, "seed": task.seed, "aspect": list(task.aspect),
            "version": task.version, "arg": task.arg, "inputs": len(task.images),
            "params": task.params, "submitted_at": time.time(),
        }
        # the record appears whole or not at all: a process killed mid-write leaves no
        # half-written task for the worker that takes over
        _write_atomic(folder / "task.json", orjson.dumps(spec))
        with (self.root / "submissions.log").open("a") as log:
            log.write(f"{task.job_id} {upstream_id} {os.getpid()}\n")

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        return await asyncio.to_thread(self._poll_many, upstream_ids)

    def _poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        out = {}
        for upstream_id in upstream_ids:
            update = self._poll(upstream_id)
            if update is not None:
                out[upstream_id] = update
        return out

    async def probe(self) -> None:
        """The renderer is always there; only a missing or read-only folder stops it."""
        try:
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ProviderError(f"[Upstream unavailable] {exc.strerror}",
                                kind=FailureKind.UNAVAILABLE) from None

    async def close(self) -> None:
        return None

    def _poll(self, upstream_id: str) -> ProviderUpdate | None:
        folder = self._dir(upstream_id)
        try:
            spec = orjson.loads((folder / "task.json").read_bytes())
        except FileNotFoundError:
            return None  # lost: the worker decides what that means
        prompt = spec["prompt"]
        if self.hang_marker and self.hang_marker in prompt:
            return ProviderUpdate(TaskState.RUNNING, progress=10)
        elapsed = time.time() - spec["submitted_at"]
        if elapsed < self.delay:
            step = int(elapsed / self.delay * self.steps)
            return ProviderUpdate(TaskState.RUNNING, progress=min(99, step * 100 // self.steps))
        if self.fail_marker and self.fail_marker in prompt:
            return ProviderUpdate(TaskState.FAILED, message=self.fail_message)
        return self._result(folder, spec)

    def _result(self, folder: Path, spec: dict[str, Any]) -> ProviderUpdate:
        action = spec["action"]
        if action == "seed":
            return ProviderUpdate(TaskState.SUCCESS, progress=100,
                                  seed=str(spec["params"].get("parent_seed", spec["seed"])))
        inputs = [
            imaging.decode_image((folder / f"in{i}.bin").read_bytes(), f"input {i}",
                                 mode="L" if action == "inpaint" and i == 1 else "RGB")
            for i in range(spec["inputs"])
        ]
        if action == "describe":
            return ProviderUpdate(TaskState.SUCCESS, progress=100,
                                  prompts=tuple(imaging.describe(inputs[0])))
        cached = folder / "result.png"
        if not cached.exists():
            _write_atomic(cached, imaging.encode_png(render(spec, inputs, self.scale)))
        return ProviderUpdate(TaskState.SUCCESS, progress=100, image=cached.read_bytes())

    async def cancel(self, upstream_id: str) -> None:
        await self.forget(upstream_id)

    async def forget(self, upstream_id: str) -> None:
        await asyncio.to_thread(_remove_tree, self._dir(upstream_id))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _remove_tree(folder: Path) -> None:
    """Best effort: two workers may forget the same task at once."""
    try:
        for item in folder.iterdir():
            item.unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        return


def _scaled(aspect: tuple[int, int], scale: float) -> tuple[int, int] | None:
    if scale == 1.0:
        return None
    width, height = imaging.tile_size(aspect)
    return max(8, 8 * round(width * scale / 8)), max(8, 8 * round(height * scale / 8))


def render(spec: dict[str, Any], inputs: list[Image.Image], scale: float = 1.0) -> Image.Image:
    """Run the image operation of ``spec['action']``; ``scale`` shrinks newly drawn grids."""
    action, arg = spec["action"], spec["arg"]
    prompt, seed = spec["prompt"], int(spec["seed"])
    aspect = (int(spec["aspect"][0]), int(spec["aspect"][1]))
    source = inputs[0] if inputs else None
    tile = _scaled(aspect, scale)
    ops: dict[str, Callable[[], Image.Image]] = {
        "imagine": lambda: imaging.render_grid(prompt, seed, aspect, tile),
        "reroll": lambda: imaging.render_grid(prompt, seed, aspect, tile),
        "blend": lambda: imaging.blend(inputs, aspect, seed),
        "make_square": lambda: imaging.make_square(_req(source), prompt, seed),
        "inpaint": lambda: imaging.inpaint(_req(source), inputs[1], prompt, seed,
                                           imaging.tile_size(aspect)),
    }
    if action in ops:
        return ops[action]()
    family = action.rstrip("1234") if action[-1].isdigit() else action
    image = _req(source)
    if family == "upsample":
        return imaging.upscale_quadrant(image, int(arg))
    if family == "variation":
        return imaging.variation_grid(image, int(arg), prompt, seed)
    if action in ("high_variation", "low_variation"):
        return imaging.vary_grid(image, prompt, seed, float(arg), imaging.tile_size(aspect))
    if action.startswith("zoom_out"):
        return imaging.zoom_out(image, float(arg), prompt, seed, imaging.tile_size(aspect))
    if action.startswith("pan_"):
        return imaging.pan(image, str(arg), prompt, seed)
    if "upscale" in action:
        factor = float(arg) if isinstance(arg, int | float) else 2.0
        return imaging.upscale(image, factor, creative=arg == "creative")
    raise ProviderError(f"[Bad response] the local provider cannot run {action}")


def _req(image: Image.Image | None) -> Image.Image:
    if image is None:
        raise ProviderError("[Bad response] the action needs its parent's image")
    return image
