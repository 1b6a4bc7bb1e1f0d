"""The local renderer of the video products (Sora, Gemini video): a real MP4 and its
thumbnail, rendered in a worker process (:mod:`gengate.imaging.video`)."""

from __future__ import annotations

from gengate.imaging.video import render_video_offloaded
from gengate.providers.base import ProviderTask, ProviderUpdate, ResultFile, TaskState

__all__ = ["VideoRenderer"]


class VideoRenderer:
    """Reads ``width``, ``height``, ``duration`` and ``seed`` from the task's options;
    ``scale`` (``GENGATE_LOCAL_SCALE``) shrinks the frame, never the duration."""

    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        options = task.options
        width = max(16, round(int(options["width"]) * scale))
        height = max(16, round(int(options["height"]) * scale))
        video = render_video_offloaded(task.prompt, int(options.get("seed", 0)),
                                       (width, height), float(options["duration"]))
        meta = {"width": video.width, "height": video.height, "seconds": video.seconds}
        return ProviderUpdate(TaskState.SUCCESS, progress=100, files=(
            ResultFile("video", data=video.mp4, content_type="video/mp4", meta=meta),
            ResultFile("thumbnail", data=video.thumbnail, content_type="image/jpeg",
                       meta={"width": video.width, "height": video.height}),
        ))
