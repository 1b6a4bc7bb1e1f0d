"""OpenAI images' built-in renderer (the embedded default upstream): ``n`` real pictures of
the size asked for, in the output format asked for, that follow the prompt and keep the
edited images' look."""

from __future__ import annotations

from gengate.imaging.codec import decode_image
from gengate.imaging.picture import encode, render_picture
from gengate.products.base import ResultFile
from gengate.products.images import picture_seed
from gengate.providers.base import ProviderTask, ProviderUpdate, TaskState

__all__ = ["OpenAIImagesRenderer"]


class OpenAIImagesRenderer:
    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        options = task.options
        width, height = int(options.get("width") or 1024), int(options.get("height") or 1024)
        size = (max(8, round(width * scale)), max(8, round(height * scale)))
        images = task.images[:-1] if options.get("mask") else task.images
        references = [decode_image(data, f"image[{i}]") for i, data in enumerate(images)]
        fmt = str(options.get("output_format") or "png")
        seed = picture_seed(task.job_id, None)
        files = tuple(
            ResultFile(f"image-{i}", data=encode(render_picture(task.prompt, seed + i, size,
                                                                references), fmt),
                       content_type=f"image/{fmt}")
            for i in range(int(options.get("n") or 1)))
        return ProviderUpdate(TaskState.SUCCESS, progress=100, files=files)
