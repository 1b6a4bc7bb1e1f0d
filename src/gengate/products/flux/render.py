"""Flux's built-in renderer (the embedded default upstream): one real picture of the job's
pixel size that follows the prompt, keeping the input images' composition for edits."""

from __future__ import annotations

from gengate.imaging.codec import decode_image
from gengate.imaging.picture import encode, render_picture
from gengate.products.base import ResultFile
from gengate.products.images import picture_seed
from gengate.providers.base import ProviderTask, ProviderUpdate, TaskState

__all__ = ["FluxRenderer"]


class FluxRenderer:
    """``render`` runs in a thread when the local upstream says the task is due."""

    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        options = task.options
        width, height = int(options.get("width") or 1024), int(options.get("height") or 1024)
        size = (max(8, round(width * scale)), max(8, round(height * scale)))
        references = [decode_image(data, f"image[{i}]") for i, data in enumerate(task.images)]
        seed = picture_seed(task.job_id, options.get("seed"))
        fmt = "jpeg" if options.get("output_format") == "jpeg" else "png"
        data = encode(render_picture(task.prompt, seed, size, references), fmt)
        return ProviderUpdate(TaskState.SUCCESS, progress=100, data={"seed": seed},
                              files=(ResultFile("image", data=data, content_type=f"image/{fmt}"),))
