"""The built-in ``local`` upstream: real files made on this machine, for every product.

It behaves like a remote upstream: ``submit`` records the task (on disk, so a worker that
dies does not lose it) and answers a task id; ``poll`` reports progress over the configured
delay and then the result, made by the task's product's own renderer
(``Product.renderer``) and kept on disk until the task is forgotten.

Most renderers draw in the polling thread. A :class:`BackgroundRenderer` (video) renders
in a render process instead: the first due poll starts it, later polls answer "running"
until it is done, so a long render holds up neither the other tasks' polls nor other
renders. A render in flight lives in this process only: a worker that takes the job over
renders it again.

Submits are idempotent by job: a job's task id is derived from its job id, so sending a
job again while its task exists answers the same task and renders nothing twice; the
submit's tag is kept beside it for :meth:`LocalProvider.find`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson

from gengate.products.base import BackgroundRenderer, LocalRenderer, ResultFile
from gengate.products.registry import builtin
from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)

__all__ = ["LocalProvider"]

#: while every task of a poll is a background render, the poll waits this long at most for
#: one to finish (instead of answering "running" in a tight loop)
RENDER_WAIT = 0.5


class LocalProvider:
    """Renders with each product's own renderer; ``delay`` seconds per job in ``steps``
    progress steps."""

    name = "local"
    wants_parent_image = True
    supports_cancel = True
    finds_by_tag = True

    def __init__(self, root: Path, *, delay: float = 0.0, steps: int = 4,
                 fail_marker: str | None = None, hang_marker: str | None = None,
                 fail_message: str = "[Internal error] Something went wrong",
                 scale: float = 1.0,
                 renderers: Callable[[str], LocalRenderer] | None = None):
        if renderers is None:
            registry = builtin()
            renderers = lambda name: registry.get(name).renderer()  # noqa: E731
        #: a product's renderer by product name
        self.renderers = renderers
        self.root = root
        self.delay = delay
        self.steps = steps
        self.fail_marker = fail_marker
        self.hang_marker = hang_marker
        self.fail_message = fail_message
        self.scale = scale
        self.poll_interval = delay / steps if delay else 0.0
        #: background renders in flight, by task id
        self._rendering: dict[str, Future[ProviderUpdate]] = {}
        self._rendering_lock = threading.Lock()

    def _dir(self, upstream_id: str) -> Path:
        if not upstream_id.isalnum():
            raise ProviderError("[Bad response] unknown task", kind=FailureKind.LOST)
        return self.root / upstream_id

    async def submit(self, task: ProviderTask) -> str:
        upstream_id = uuid.uuid5(_JOBS, task.job_id).hex
        await asyncio.to_thread(self._save, upstream_id, task)
        return upstream_id

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        return await asyncio.to_thread(self._find, tag)

    def _find(self, tag: str) -> str | None:
        try:
            upstream_id = (self.root / "tags" / _tag_file(tag)).read_text()
        except FileNotFoundError:
            return None
        return upstream_id if (self._dir(upstream_id) / "task.json").exists() else None

    def _save(self, upstream_id: str, task: ProviderTask) -> None:
        folder = self._dir(upstream_id)
        if not (folder / "task.json").exists():
            self._create(folder, upstream_id, task)
        if task.tag:
            tags = self.root / "tags"
            tags.mkdir(parents=True, exist_ok=True)
            name = _tag_file(task.tag)
            _write_atomic(tags / name, upstream_id.encode())
            with (folder / "tags.txt").open("a") as names:  # dropped with the task
                names.write(f"{name}\n")

    def _create(self, folder: Path, upstream_id: str, task: ProviderTask) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(task.images):
            (folder / f"in{i}.bin").write_bytes(data)
        spec = {
            "job_id": task.job_id, "action": task.action, "prompt": task.prompt,
            "mode": task.mode, "seed": task.seed, "aspect": list(task.aspect),
            "version": task.version, "arg": task.arg, "inputs": len(task.images),
            "params": task.params, "submitted_at": time.time(),
            "product": task.product, "options": task.options,
        }
        # the record appears whole or not at all: a process killed mid-write leaves no
        # half-written task for the worker that takes over
        _write_atomic(folder / "task.json", orjson.dumps(spec))
        with (self.root / "submissions.log").open("a") as log:
            log.write(f"{task.job_id} {upstream_id} {os.getpid()}\n")

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        out = await asyncio.to_thread(self._poll_many, upstream_ids)
        waiting = self._in_flight(out)
        if waiting and len(waiting) == len(out):
            # nothing to report but renders under way: answer when the first one ends
            await _first_done(waiting, RENDER_WAIT)
        return out

    def _poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        out = {}
        for upstream_id in upstream_ids:
            update = self._poll(upstream_id)
            if update is not None:
                out[upstream_id] = update
        return out

    def _in_flight(self, out: dict[str, ProviderUpdate]) -> list[Future[ProviderUpdate]]:
        with self._rendering_lock:
            return [future for upstream_id, update in out.items()
                    if update.state is TaskState.RUNNING
                    and (future := self._rendering.get(upstream_id)) is not None]

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
        cached = folder / "result.json"
        if cached.exists():
            return _load_update(folder)
        renderer = self.renderers(spec.get("product", "midjourney"))
        if isinstance(renderer, BackgroundRenderer):
            update = self._background(folder, spec, renderer)
        else:
            update = renderer.render(self._task(folder, spec), self.scale)
        if update.state is TaskState.SUCCESS:
            _save_update(folder, update)
        return update

    def _background(self, folder: Path, spec: dict[str, Any],
                    renderer: BackgroundRenderer) -> ProviderUpdate:
        """Start the render, or answer "running" until it is done, then its update (a
        render that raised is forgotten, so the next poll starts it again)."""
        upstream_id = folder.name
        with self._rendering_lock:
            future = self._rendering.get(upstream_id)
            if future is None:
                self._rendering[upstream_id] = renderer.begin(self._task(folder, spec),
                                                              self.scale)
            elif future.done():
                del self._rendering[upstream_id]
        if future is None or not future.done():
            # the last progress step holds while the file renders
            return ProviderUpdate(TaskState.RUNNING,
                                  progress=(self.steps - 1) * 100 // self.steps)
        return future.result()

    def _task(self, folder: Path, spec: dict[str, Any]) -> ProviderTask:
        return ProviderTask(
            job_id=spec["job_id"], action=spec["action"], prompt=spec["prompt"],
            mode=spec["mode"], seed=int(spec["seed"]),
            aspect=(int(spec["aspect"][0]), int(spec["aspect"][1])),
            version=spec["version"], arg=spec["arg"],
            images=tuple((folder / f"in{i}.bin").read_bytes() for i in range(spec["inputs"])),
            params=spec["params"], product=spec.get("product", "midjourney"),
            options=spec.get("options") or {},
        )

    async def cancel(self, upstream_id: str) -> None:
        await self.forget(upstream_id)

    async def forget(self, upstream_id: str) -> None:
        await asyncio.to_thread(self._remove, self._dir(upstream_id))

    def _remove(self, folder: Path) -> None:
        with self._rendering_lock:
            # a render under way runs to its end in its process; its file is dropped
            render = self._rendering.pop(folder.name, None)
        if render is not None:
            render.cancel()
        try:
            names = (folder / "tags.txt").read_text().split()
        except OSError:
            names = []
        for name in names:
            (self.root / "tags" / name).unlink(missing_ok=True)
        _remove_tree(folder)


#: task ids are derived from job ids in this namespace
_JOBS = uuid.UUID("5b0c1f52-8d4e-4a57-9d0e-6f4b9c2a7e31")


def _tag_file(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()[:32]


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


async def _first_done(futures: list[Future[ProviderUpdate]], timeout: float) -> None:
    """Wait until one of ``futures`` is done, ``timeout`` seconds at most."""
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()

    def wake(_: Future[ProviderUpdate]) -> None:
        try:
            loop.call_soon_threadsafe(ended.set)
        except RuntimeError:
            pass  # the loop closed meanwhile: nobody is waiting any more

    for future in futures:
        future.add_done_callback(wake)
    try:
        await asyncio.wait_for(ended.wait(), timeout)
    except TimeoutError:
        return


def _save_update(folder: Path, update: ProviderUpdate) -> None:
    """Keep a finished render, so later polls (and a takeover) answer the same files."""
    files = []
    for i, item in enumerate(update.files):
        if item.data is not None:
            _write_atomic(folder / f"out{i}.bin", item.data)
        files.append({"role": item.role, "url": item.url, "content_type": item.content_type,
                      "meta": dict(item.meta), "stored": item.data is not None})
    if update.image is not None:
        _write_atomic(folder / "result.png", update.image)
    _write_atomic(folder / "result.json", orjson.dumps({
        "progress": update.progress, "prompts": list(update.prompts), "seed": update.seed,
        "image": update.image is not None, "files": files, "data": update.data,
    }))


def _load_update(folder: Path) -> ProviderUpdate:
    saved = orjson.loads((folder / "result.json").read_bytes())
    files = tuple(
        ResultFile(f["role"], (folder / f"out{i}.bin").read_bytes() if f["stored"] else None,
                   f["url"], f["content_type"], f["meta"])
        for i, f in enumerate(saved["files"]))
    image = (folder / "result.png").read_bytes() if saved["image"] else None
    return ProviderUpdate(TaskState.SUCCESS, progress=saved["progress"], image=image,
                          prompts=tuple(saved["prompts"]), seed=saved["seed"], files=files,
                          data=saved["data"])
