"""Single pictures for the image products (Flux, GPT image) and the fakes of their upstreams.

The Midjourney renderer draws 2x2 grids; these products answer one picture of an exact pixel
size. :func:`render_picture` draws it with the same procedural painter
(:func:`gengate.imaging.render_single`), so a prompt about a sunset over the sea shows a sunset
over the sea, and when reference images are given (an edit, Kontext's ``input_image``, GPT
image's ``referImages``) it keeps their composition and colours under the prompt's scene.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence

from PIL import Image, ImageOps

from gengate import imaging
from gengate.imaging_composite import convex_mix, vary_tile
from gengate.imaging_palette import derive_seed, prompt_key

__all__ = ["encode", "fit_area", "parse_ratio", "render_picture"]

#: how much of the references survives in an edit (the rest is the prompt's scene)
REFERENCE_WEIGHT = 0.55


def parse_ratio(text: str) -> tuple[int, int] | None:
    """``"16:9"`` as (16, 9); None when it is not two positive integers."""
    left, sep, right = text.partition(":")
    if not sep or not left.strip().isdigit() or not right.strip().isdigit():
        return None
    a, b = int(left), int(right)
    return (a, b) if a > 0 and b > 0 else None


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
    art = imaging.render_single(prompt, seed, size)
    if not references:
        return art
    fitted = [ImageOps.fit(r.convert("RGB"), size, Image.Resampling.LANCZOS) for r in references]
    base = fitted[0] if len(fitted) == 1 else convex_mix(fitted, [1.0] * len(fitted))
    rng = random.Random(derive_seed("picture", prompt_key(prompt), seed, len(fitted)))
    return vary_tile(base, art, rng, 1.0 - REFERENCE_WEIGHT)


def encode(image: Image.Image, fmt: str) -> bytes:
    """``png``, ``jpeg`` or ``webp`` bytes of an RGB picture."""
    if fmt == "png":
        return imaging.encode_png(image)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG" if fmt in ("jpeg", "jpg") else "WEBP",
                              quality=90)
    return buffer.getvalue()
