"""Gemini image's built-in renderer (the embedded default upstream): one real picture of
the job's pixel size (its aspect ratio and image size) that follows the prompt and keeps
the reference images' look."""

from __future__ import annotations

from gengate.imaging.codec import decode_image
from gengate.imaging.picture import encode, render_picture
from gengate.products.base import ResultFile
from gengate.products.images import picture_seed
from gengate.providers.base import ProviderTask, ProviderUpdate, TaskState

__all__ = ["GeminiImageRenderer"]


class GeminiImageRenderer:
    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        options = task.options
        width, height = int(options.get("width") or 1024), int(options.get("height") or 1024)
        size = (max(8, round(width * scale)), max(8, round(height * scale)))
        references = [decode_image(data, f"refer_images[{i}]")
                      for i, data in enumerate(task.images)]
        picture = render_picture(task.prompt, picture_seed(task.job_id, None), size, references)
        return ProviderUpdate(TaskState.SUCCESS, progress=100, files=(
            ResultFile("image", data=encode(picture, "png"), content_type="image/png"),))
