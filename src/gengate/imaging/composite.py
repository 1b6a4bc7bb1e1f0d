"""Compositing helpers for the actions of :mod:`gengate.imaging` (private to it).

Mirror-padded outpainting, feathered inpainting, mesh warps, colour jitter, tile variations and
convex image mixes; deterministic given their inputs (any randomness comes from the
``random.Random`` passed in).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from gengate.imaging.paint import BILINEAR, BOX, Size, noise_mask
from gengate.imaging.palette import clamp8


def blurred(image: Image.Image, amount: float) -> Image.Image:
    """A cheap strong blur: downscale by `amount`, blur, upscale back."""
    w, h = image.size
    k = max(1.0, amount)
    small = image.resize((max(1, round(w / k)), max(1, round(h / k))), BOX)
    return small.filter(ImageFilter.GaussianBlur(1.5)).resize((w, h), BILINEAR)


def mirror_canvas(image: Image.Image, size: Size, offset: tuple[int, int]) -> Image.Image:
    """`image` at `offset` on a canvas of `size`, the rest filled with its mirror images."""
    w, h = image.size
    ox, oy = offset
    variants: dict[tuple[int, int], Image.Image] = {(0, 0): image}
    canvas = Image.new("RGB", size)
    for ky in range(math.floor(-oy / h), math.ceil((size[1] - oy) / h)):
        for kx in range(math.floor(-ox / w), math.ceil((size[0] - ox) / w)):
            key = (kx % 2, ky % 2)
            if key not in variants:
                piece = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if key[0] else image
                flip = Image.Transpose.FLIP_TOP_BOTTOM
                variants[key] = piece.transpose(flip) if key[1] else piece
            canvas.paste(variants[key], (ox + kx * w, oy + ky * h))
    return canvas


def proximity_mask(size: Size, rect: tuple[int, int, int, int], reach: float) -> Image.Image:
    """L mask: 255 on `rect`, fading to 0 about `reach` pixels outside it."""
    w, h = size
    k = max(1.0, reach / 8)
    small = Image.new("L", (max(1, round(w / k)), max(1, round(h / k))), 0)
    grow = reach * 0.5
    x0, y0, x1, y1 = rect
    ImageDraw.Draw(small).rectangle(((x0 - grow) / k, (y0 - grow) / k, (x1 + grow) / k - 1,
                                     (y1 + grow) / k - 1), fill=255)
    return small.filter(ImageFilter.GaussianBlur(reach / k / 2.5)).resize((w, h), BILINEAR)


def outpaint(image: Image.Image, size: Size, offset: tuple[int, int], art: Image.Image,
             rng: random.Random) -> Image.Image:
    """Extend `image` to `size` (placed at `offset`) with `art` blended into its mirrored edges."""
    mirror = mirror_canvas(image, size, offset)
    s = math.sqrt(size[0] * size[1])
    soft = blurred(mirror, max(2.0, s / 40))
    rect = (offset[0], offset[1], offset[0] + image.width, offset[1] + image.height)
    base = Image.composite(mirror, soft, proximity_mask(size, rect, s * rng.uniform(0.04, 0.07)))
    tinted = Image.blend(art, soft, rng.uniform(0.3, 0.45))
    out = Image.composite(base, tinted, proximity_mask(size, rect, s * rng.uniform(0.14, 0.22)))
    out.paste(image, offset)
    return out


def inpaint_tile(image: Image.Image, context: Image.Image, feather: Image.Image,
                 art: Image.Image, rng: random.Random) -> Image.Image:
    """Replace the feathered white area with `art` tinted by the blurred `context`."""
    tinted = Image.blend(art, context, rng.uniform(0.25, 0.4))
    return Image.composite(tinted, image, feather)


def feather_mask(redraw: Image.Image, radius: float) -> Image.Image:
    """A soft copy of a binary mask that is still exactly 0 wherever `redraw` is 0."""
    return ImageChops.multiply(redraw.filter(ImageFilter.GaussianBlur(radius)), redraw)


def warp(image: Image.Image, rng: random.Random, amount: float, cells: int = 4) -> Image.Image:
    """A smooth mesh warp: interior grid points move by up to `amount` pixels."""
    w, h = image.size
    cells = min(cells, w // 16, h // 16)
    if cells < 2:
        return image.copy()
    xs = [w * i / cells for i in range(cells + 1)]
    ys = [h * j / cells for j in range(cells + 1)]
    src: dict[tuple[int, int], tuple[float, float]] = {}
    for j in range(cells + 1):
        for i in range(cells + 1):
            inner = 0 < i < cells and 0 < j < cells
            dx = rng.uniform(-amount, amount) if inner else 0.0
            dy = rng.uniform(-amount, amount) if inner else 0.0
            src[i, j] = (xs[i] + dx, ys[j] + dy)
    data = [((round(xs[i]), round(ys[j]), round(xs[i + 1]), round(ys[j + 1])),
             (*src[i, j], *src[i, j + 1], *src[i + 1, j + 1], *src[i + 1, j]))
            for j in range(cells) for i in range(cells)]
    return image.transform(image.size, Image.Transform.MESH, data, BILINEAR)


def colour_jitter(image: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """Per-channel gain and a brightness lift, both proportional to `strength`."""
    lift = rng.uniform(-1, 1) * strength * 30
    lut: list[int] = []
    for _ in range(3):
        gain = 1 + rng.uniform(-1, 1) * strength * 0.3
        lut += [clamp8(v * gain + lift) for v in range(256)]
    return image.point(lut)


def vary_tile(base: Image.Image, art: Image.Image, rng: random.Random, strength: float
              ) -> Image.Image:
    """A variation of `base`: warped, colour-jittered and partly repainted with `art`."""
    warped = warp(base, rng, min(base.size) * 0.06 * strength)
    jittered = colour_jitter(warped, rng, strength)
    tinted = Image.blend(art, blurred(base, min(base.size) / 32), 0.5)
    lut = [clamp8((v - 90) * strength * 2.4) for v in range(256)]
    mask = noise_mask(base.size, rng, (rng.randint(2, 4), rng.randint(2, 4)), 2).point(lut)
    return Image.composite(tinted, jittered, mask)


def convex_mix(images: Sequence[Image.Image], weights: Sequence[float],
               pattern: Image.Image | None = None, swing: float = 0.0) -> Image.Image:
    """A per-pixel convex combination of same-size images (a running weighted average).

    Without `pattern` the weights are global; with an L `pattern` each image's share moves by up
    to ``swing`` around its weight where the pattern is dark or light (always within 0..1).
    """
    out, total = images[0], weights[0]
    for index, (img, weight) in enumerate(zip(images[1:], weights[1:], strict=True), start=1):
        total += weight
        share = weight / total
        if pattern is None:
            out = Image.blend(out, img, share)
            continue
        sign = 1 if index % 2 else -1
        lut = [clamp8(255 * (share + sign * swing * (v - 128) / 128)) for v in range(256)]
        out = Image.composite(img, out, pattern.point(lut))
    return out
