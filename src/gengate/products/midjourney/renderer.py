"""Midjourney's local renderer: every action a real image operation
(:mod:`gengate.products.midjourney.imaging`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from gengate.products.midjourney import imaging
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate, TaskState

__all__ = ["INPUT_SIDE", "MidjourneyRenderer", "render"]

#: longest side of the copies blend and describe draw from (a blend's tiles are about 512)
INPUT_SIDE = 1024


class MidjourneyRenderer:
    """Renders a Midjourney task: grids, upscales, variations, zoom, pan, blend,
    describe and seed."""

    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        action = task.action
        if action == "seed":
            return ProviderUpdate(TaskState.SUCCESS, progress=100,
                                  seed=str(task.params.get("parent_seed", task.seed)))
        # blend and describe draw from small copies: one full-size input in memory at a time
        shrink = INPUT_SIDE if action in ("blend", "describe") else None
        inputs = [
            imaging.decode_image(data, f"input {i}",
                                 mode="L" if action == "inpaint" and i == 1 else "RGB",
                                 shrink_to=shrink)
            for i, data in enumerate(task.images)
        ]
        if action == "describe":
            return ProviderUpdate(TaskState.SUCCESS, progress=100,
                                  prompts=tuple(imaging.describe(inputs[0])))
        spec = {"action": action, "arg": task.arg, "prompt": task.prompt, "seed": task.seed,
                "aspect": list(task.aspect)}
        return ProviderUpdate(TaskState.SUCCESS, progress=100,
                              image=imaging.encode_png(render(spec, inputs, scale)))


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
