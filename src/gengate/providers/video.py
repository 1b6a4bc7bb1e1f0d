"""The local renderer of the video products (Sora, Gemini video): a real MP4 and its
thumbnail, rendered in a render process (:mod:`gengate.imaging.video`).

It is a background renderer: the local upstream starts the render and keeps answering its
other tasks (and starting other renders) while the render process encodes."""

from __future__ import annotations

from concurrent.futures import Future

from gengate.imaging.video import offload, render_video
from gengate.providers.base import ProviderTask, ProviderUpdate, ResultFile, TaskState

__all__ = ["VideoRenderer"]


class VideoRenderer:
    """Reads ``width``, ``height``, ``duration`` and ``seed`` from the task's options;
    ``scale`` (``GENGATE_LOCAL_SCALE``) shrinks the frame, never the duration."""

    def begin(self, task: ProviderTask, scale: float) -> Future[ProviderUpdate]:
        options = task.options
        width = max(16, round(int(options["width"]) * scale))
        height = max(16, round(int(options["height"]) * scale))
        return offload(_render, task.prompt, int(options.get("seed", 0)), (width, height),
                       float(options["duration"]))

    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        return self.begin(task, scale).result()


def _render(prompt: str, seed: int, size: tuple[int, int], seconds: float) -> ProviderUpdate:
    """In the render process: the video, as the task's update (sent back pickled)."""
    video = render_video(prompt, seed, size, seconds)
    meta = {"width": video.width, "height": video.height, "seconds": video.seconds}
    return ProviderUpdate(TaskState.SUCCESS, progress=100, files=(
        ResultFile("video", data=video.mp4, content_type="video/mp4", meta=meta),
        ResultFile("thumbnail", data=video.thumbnail, content_type="image/jpeg",
                   meta={"width": video.width, "height": video.height}),
    ))
