"""Single pictures for the image products (Flux, GPT image) and the fakes of their upstreams.

The Midjourney renderer draws 2x2 grids; these products answer one picture of an exact pixel
size. :func:`render_picture` draws it with the same procedural painter
(the palette and scene of :mod:`gengate.imaging.palette` and :mod:`gengate.imaging.scene`,
as Midjourney's ``render_single``), so a prompt about a sunset over the sea shows a sunset
over the sea, and when reference images are given (an edit, Kontext's ``input_image``, GPT
image's ``referImages``) it keeps their composition and colours under the prompt's scene.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence

from PIL import Image, ImageOps

from gengate.imaging.composite import convex_mix, vary_tile
from gengate.imaging.palette import derive_seed, make_palette, prompt_key
from gengate.imaging.scene import paint_scene

__all__ = ["COMMON_RATIOS", "encode", "fit_area", "parse_ratio", "ratio_of", "render_picture"]

#: how much of the references survives in an edit (the rest is the prompt's scene)
REFERENCE_WEIGHT = 0.55


def parse_ratio(text: str) -> tuple[int, int] | None:
    """``"16:9"`` as (16, 9); None when it is not two positive integers."""
    left, sep, right = text.partition(":")
    if not sep or not left.strip().isdigit() or not right.strip().isdigit():
        return None
    a, b = int(left), int(right)
    return (a, b) if a > 0 and b > 0 else None


#: the ratios image products name (Flux's and GPT image's aspect_ratio values)
COMMON_RATIOS = ((21, 9), (16, 9), (4, 3), (3, 2), (1, 1), (2, 3), (3, 4), (9, 16), (9, 21),
                 (5, 4), (4, 5))


def ratio_of(size: tuple[int, int]) -> tuple[int, int]:
    """The ratio of a size in small terms: exact when it reduces to terms of at most 21
    (1024x768 -> 4:3), else the nearest of :data:`COMMON_RATIOS` (1376x768 -> 16:9)."""
    width, height = size
    g = math.gcd(width, height)
    if g and max(width // g, height // g) <= 21:
        return width // g, height // g
    return min(COMMON_RATIOS, key=lambda r: abs(math.log(r[0] / r[1] * height / width)))


def fit_area(ratio: tuple[int, int], area: int, multiple: int) -> tuple[int, int]:
    """The size of about ``area`` pixels at ``ratio``, each side a multiple of ``multiple``."""
    a, b = ratio
    width = math.sqrt(area * a / b)
    height = width * b / a
    return (max(multiple, multiple * round(width / multiple)),
            max(multiple, multiple * round(height / multiple)))


def render_picture(prompt: str, seed: int, size: tuple[int, int],
                   references: Sequence[Image.Image] = ()) -> Image.Image:
    """One RGB picture of exactly ``size`` for (prompt, seed); with references, their mix
    (centre-cropped to ``size``) shows through the prompt's scene."""
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"invalid size {size[0]}x{size[1]}")
    key = prompt_key(prompt)
    palette = make_palette(prompt).jittered(derive_seed("jitter", "tile", key, seed, 0))
    art = paint_scene(palette, derive_seed("tile", key, seed, 0), size)
    if not references:
        return art
    fitted = [ImageOps.fit(r.convert("RGB"), size, Image.Resampling.LANCZOS) for r in references]
    base = fitted[0] if len(fitted) == 1 else convex_mix(fitted, [1.0] * len(fitted))
    rng = random.Random(derive_seed("picture", prompt_key(prompt), seed, len(fitted)))
    return vary_tile(base, art, rng, 1.0 - REFERENCE_WEIGHT)


def encode(image: Image.Image, fmt: str) -> bytes:
    """``png``, ``jpeg`` or ``webp`` bytes of an RGB picture."""
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        image.convert("RGB").save(buffer, format="JPEG" if fmt in ("jpeg", "jpg") else "WEBP",
                                  quality=90)
    return buffer.getvalue()
