"""Video for the built-in ``local`` upstream: the procedural landscape of
:mod:`gengate.imaging.scene` in motion, encoded as H.264 in MP4 by PyAV (FFmpeg's libx264).

The picture follows the prompt exactly as a Midjourney image does (its palette, mood and
motifs); the camera then drifts across a larger painting of the scene and slowly zooms, on
a path drawn from the seed, while the light breathes. The picture is deterministic from
(prompt, seed, size, seconds): every frame is drawn the same. The encoded bytes usually
match too, but not always: two runs were seen to differ in a few frames' encoding.

The MP4 is ``yuv420p``, H.264 High profile with the index (``moov``) at the front
(``faststart``), which every browser's ``<video>`` plays and seeks.

:func:`render_video` runs in the calling thread; :func:`offload` runs it (or any picklable
function) in a render process (one per CPU, at most two), so encoding never holds the API
process's interpreter while the event loop serves requests. Render processes run at a
lower CPU priority (``nice`` +:data:`RENDER_NICE`): on a machine whose cores they fill, the
API's requests come first and the renders take what is left.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import av
from PIL import Image, ImageEnhance

from gengate.imaging.palette import derive_seed, make_palette, prompt_key
from gengate.imaging.scene import paint_scene

__all__ = ["FPS", "RENDER_NICE", "Video", "offload", "render_video", "render_video_offloaded"]

#: frames per second of every rendered video
FPS = 24
#: the painted scene is this much larger than the frame, so the camera can travel
_OVERSCAN = 1.3
#: H.264 levels limit the frame size; x264 needs even sides
_MAX_SIDE = 4096
#: how much lower than the API process the render processes run (``nice`` increment)
RENDER_NICE = 10

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Video:
    """A rendered video: the MP4, a JPEG thumbnail (its first frame) and its facts."""

    mp4: bytes
    thumbnail: bytes
    width: int
    height: int
    seconds: float
    frames: int


def _even(value: float) -> int:
    return max(16, min(_MAX_SIDE, 2 * round(value / 2)))


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * t)


def render_video(prompt: str, seed: int, size: tuple[int, int], seconds: float,
                 fps: int = FPS) -> Video:
    """An MP4 of ``seconds`` at ``size`` (even sides) whose picture follows ``prompt``."""
    width, height = _even(size[0]), _even(size[1])
    if not 0 < seconds <= 600:
        raise ValueError(f"invalid duration {seconds}")
    frames = max(1, round(seconds * fps))
    rng = random.Random(derive_seed("video", prompt_key(prompt), seed))
    big = (math.ceil(width * _OVERSCAN), math.ceil(height * _OVERSCAN))
    scene = paint_scene(make_palette(prompt), derive_seed("tile", prompt_key(prompt), seed, 0),
                        big)
    # the camera drifts from one corner region of the painting to another, zooming in or out
    thumbnail = b""
    # faststart moves the index to the front by rewriting the file: it needs a real file
    with tempfile.TemporaryDirectory(prefix="gengate-video-") as folder:
        path = Path(folder) / "out.mp4"
        thumbnail = _encode(path, scene, big, (width, height), frames, fps, rng)
        mp4 = path.read_bytes()
    return Video(mp4, thumbnail, width, height, frames / fps, frames)


def _encode(path: Path, scene: Image.Image, big: tuple[int, int], size: tuple[int, int],
            frames: int, fps: int, rng: random.Random) -> bytes:
    """Write the frames to ``path``; the first frame as a JPEG."""
    width, height = size
    start = (rng.uniform(0, 1), rng.uniform(0, 1))
    end = (1 - start[0] * rng.uniform(0.3, 1.0), 1 - start[1] * rng.uniform(0.3, 1.0))
    zoom_from, zoom_to = (1.0, rng.uniform(0.8, 0.9))
    if rng.random() < 0.5:
        zoom_from, zoom_to = zoom_to, zoom_from
    breath = rng.uniform(0.03, 0.07)
    thumbnail = b""
    with av.open(str(path), "w", format="mp4",
                 options={"movflags": "+faststart"}) as container:
        # one thread: x264's output then depends on nothing but the frames
        stream = container.add_stream("libx264", rate=fps, options={
            "preset": "veryfast", "crf": "23", "profile": "high", "threads": "1"})
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for index in range(frames):
            t = _ease(index / max(1, frames - 1))
            zoom = zoom_from + (zoom_to - zoom_from) * t
            view_w, view_h = width * zoom, height * zoom
            x = (big[0] - view_w) * (start[0] + (end[0] - start[0]) * t)
            y = (big[1] - view_h) * (start[1] + (end[1] - start[1]) * t)
            frame = scene.resize((width, height), Image.Resampling.BILINEAR,
                                 box=(x, y, x + view_w, y + view_h))
            light = 1.0 + breath * math.sin(2 * math.pi * index / (fps * 4))
            frame = ImageEnhance.Brightness(frame).enhance(light)
            if index == 0:
                still = io.BytesIO()
                frame.save(still, "JPEG", quality=85)
                thumbnail = still.getvalue()
            picture = av.VideoFrame.from_image(frame)  # type: ignore[no-untyped-call]
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return thumbnail


def _start_render_process(parent: int) -> None:
    """A render process's initializer: lower its priority, and follow its parent."""
    os.nice(RENDER_NICE)
    _follow_parent(parent)


def _follow_parent(parent: int) -> None:
    """In a pool process: exit once the process that started it is gone (killed, say),
    rather than linger as an orphan."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="gengate-parent-watch", daemon=True).start()


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor(broken: ProcessPoolExecutor | None = None) -> ProcessPoolExecutor:
    """The render pool; ``broken``: the pool that refused work (a render process died),
    replaced by a new one."""
    global _pool
    with _pool_lock:
        if _pool is not None and _pool is broken:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
        if _pool is None:
            workers = max(1, min(2, multiprocessing.cpu_count()))
            # spawn: the API process runs threads and an event loop, which a fork would copy
            _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_render_process,
                                        initargs=(os.getpid(),))
        return _pool


def offload(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """``fn(*args)`` in a render process (``fn`` and its arguments picklable). A pool
    broken by a render process's death is replaced here; the renders it held fail with
    :class:`~concurrent.futures.process.BrokenProcessPool`."""
    pool = _executor()
    try:
        return pool.submit(fn, *args, **kwargs)
    except BrokenProcessPool:
        return _executor(broken=pool).submit(fn, *args, **kwargs)


def render_video_offloaded(prompt: str, seed: int, size: tuple[int, int],
                           seconds: float, fps: int = FPS) -> Video:
    """:func:`render_video` in a render process; blocks the calling thread, never the
    event loop."""
    return offload(render_video, prompt, seed, size, seconds, fps).result()
