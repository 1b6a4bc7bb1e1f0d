"""An OpenAI images job as a request to OpenAI's Images API, and its answer read back
(platform.openai.com/docs/api-reference/images): the client's own fields are passed on;
DALL-E models are asked for ``b64_json`` so the pictures come back in the answer (GPT image
models always answer base64); every image of ``data`` is kept."""

from __future__ import annotations

import base64
from typing import Any

from gengate.products.base import ResultFile
from gengate.products.openai_images.options import GPT_MODELS, OpenAIImagesOptions
from gengate.providers.base import ProviderTask, ProviderUpdate, TaskState

__all__ = ["build_request", "read_answer"]


def build_request(task: ProviderTask) -> tuple[str, dict[str, Any],
                                              list[tuple[str, tuple[str, bytes, str]]]]:
    options = OpenAIImagesOptions.from_json(task.options)
    fields: dict[str, Any] = {"model": options.model, "prompt": task.prompt, "n": options.n,
                              "size": options.size}
    for name in ("quality", "background", "output_compression", "moderation", "style"):
        value = getattr(options, name)
        if value is not None:
            fields[name] = value
    gpt = options.model in GPT_MODELS
    if gpt:
        fields["output_format"] = options.output_format
    else:
        fields["response_format"] = "b64_json"
    if not task.images:
        return "generations", fields, []
    images = task.images[:-1] if options.mask else task.images
    name = "image[]" if gpt else "image"
    files = [(name, (f"image-{i}.png", data, "image/png")) for i, data in enumerate(images)]
    if options.mask:
        files.append(("mask", ("mask.png", task.images[-1], "image/png")))
    return "edits", fields, files


def read_answer(payload: dict[str, Any] | None) -> ProviderUpdate:
    """Every ``data[].b64_json`` of the answer, as a finished task."""
    items = payload.get("data") if payload else None
    fmt = str(payload.get("output_format") or "png") if payload else "png"
    files = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        encoded = item.get("b64_json") if isinstance(item, dict) else None
        if not isinstance(encoded, str):
            continue
        try:
            data = base64.b64decode(encoded, validate=True)
        except ValueError:
            return ProviderUpdate(TaskState.FAILED,
                                  message="[Bad response] the upstream's image is not base64")
        files.append(ResultFile(f"image-{index}", data=data, content_type=f"image/{fmt}"))
    if not files:
        return ProviderUpdate(TaskState.FAILED,
                              message="[Bad response] the upstream answered no image")
    return ProviderUpdate(TaskState.SUCCESS, progress=100, files=tuple(files))
