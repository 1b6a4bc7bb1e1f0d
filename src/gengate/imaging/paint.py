"""Painting primitives behind :mod:`gengate.imaging` (private to it).

Gradients, soft lights, discs, a vignette, smooth noise masks and anti-aliased shape layers, all
drawn in place or returned as new PIL images; deterministic given their inputs (any randomness
comes from the ``random.Random`` passed in).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from functools import lru_cache
from typing import cast

from PIL import Image, ImageDraw

from gengate.imaging.palette import RGB, clamp8, mix

Size = tuple[int, int]
Stops = Sequence[tuple[float, RGB]]

BOX = Image.Resampling.BOX
BILINEAR = Image.Resampling.BILINEAR
BICUBIC = Image.Resampling.BICUBIC
NEAREST = Image.Resampling.NEAREST


def vgradient(size: Size, stops: Stops) -> Image.Image:
    """An RGB vertical gradient through (position 0..1, colour) stops sorted by position."""
    w, h = size
    column = bytearray()
    for y in range(h):
        column += bytes(_colour_at(stops, (y + 0.5) / h))
    return Image.frombytes("RGB", (1, h), bytes(column)).resize((w, h), NEAREST)


def _colour_at(stops: Stops, t: float) -> RGB:
    if t <= stops[0][0]:
        return stops[0][1]
    for (p0, c0), (p1, c1) in zip(stops, stops[1:], strict=False):
        if t <= p1:
            return mix(c0, c1, (t - p0) / (p1 - p0) if p1 > p0 else 1.0)
    return stops[-1][1]


@lru_cache(maxsize=32)
def _radial(power: float, strength: float) -> Image.Image:
    """256x256 L mask: ``strength*255`` at the centre falling to 0 on the rim (radius 128)."""
    lut = [clamp8(255 * strength * max(0.0, 1 - v / 180.3) ** power) for v in range(256)]
    return Image.radial_gradient("L").point(lut)


def radial_light(img: Image.Image, centre: tuple[float, float], radius: float, colour: RGB,
                 strength: float, power: float = 2.0) -> None:
    """Paint a soft round light in place; only the visible part of the mask is computed."""
    cx, cy = centre
    x0, y0 = max(0, math.floor(cx - radius)), max(0, math.floor(cy - radius))
    x1, y1 = min(img.width, math.ceil(cx + radius)), min(img.height, math.ceil(cy + radius))
    if x1 <= x0 or y1 <= y0 or radius < 1:
        return
    k = 128 / radius
    box = cast("tuple[float, float, float, float]",
               tuple(min(256.0, max(0.0, 128 + (v - c) * k))
                     for v, c in ((x0, cx), (y0, cy), (x1, cx), (y1, cy))))
    mask = _radial(power, round(strength, 2)).resize((x1 - x0, y1 - y0), BILINEAR, box=box)
    img.paste(colour, (x0, y0), mask)


@lru_cache(maxsize=4)
def _vignette_lut(strength: float) -> Image.Image:
    lut = [clamp8(255 * strength * min(1.0, max(0.0, (v / 180.3 - 0.6) / 0.85)) ** 1.6)
           for v in range(256)]
    return Image.radial_gradient("L").point(lut)


def vignette(img: Image.Image, strength: float) -> None:
    """Darken the corners in place (an ellipse fitted to the image)."""
    img.paste((0, 0, 0), (0, 0), _vignette_lut(round(strength, 2)).resize(img.size, BILINEAR))


def noise_mask(size: Size, rng: random.Random, cells: tuple[int, int] = (6, 3),
               octaves: int = 2) -> Image.Image:
    """A smooth cloudy L mask (bicubic-upscaled random grids, `octaves` of them)."""
    w, h = size
    out: Image.Image | None = None
    for octave in range(octaves):
        cw, ch = cells[0] * 2**octave + 3, cells[1] * 2**octave + 3
        small = Image.frombytes("L", (cw, ch), rng.randbytes(cw * ch))
        layer = small.resize((w, h), BICUBIC, box=(1, 1, cw - 1, ch - 1))
        out = layer if out is None else Image.blend(out, layer, 0.35)
    assert out is not None
    return out


def shape_mask(size: Size, polygons: Sequence[Sequence[tuple[float, float]]],
               ellipses: Sequence[tuple[float, float, float, float]] = ()) -> Image.Image:
    """An anti-aliased (2x supersampled) L mask of filled polygons and ellipses."""
    w, h = size
    big = Image.new("L", (w * 2, h * 2), 0)
    draw = ImageDraw.Draw(big)
    for poly in polygons:
        draw.polygon([(x * 2, y * 2) for x, y in poly], fill=255)
    for x0, y0, x1, y1 in ellipses:
        draw.ellipse((x0 * 2, y0 * 2, x1 * 2, y1 * 2), fill=255)
    return big.reduce(2)


def fill_layer(img: Image.Image, top: float, polygons: Sequence[Sequence[tuple[float, float]]],
               stops: Sequence[tuple[float, RGB]],
               ellipses: Sequence[tuple[float, float, float, float]] = ()) -> None:
    """Fill shapes below `top` with a vertical gradient; `stops` use absolute y positions."""
    w, h = img.size
    y0 = max(0, min(h - 1, math.floor(top)))
    span = h - y0
    mask = shape_mask((w, span), [[(x, y - y0) for x, y in p] for p in polygons],
                      [(a, b - y0, c, d - y0) for a, b, c, d in ellipses])
    rel = [(min(1.0, max(0.0, (y - y0) / span)), c) for y, c in stops]
    img.paste(vgradient((w, span), rel), (0, y0), mask)


def disc(img: Image.Image, centre: tuple[float, float], radius: float, colour: RGB,
         crescent: bool = False) -> None:
    """Paint an anti-aliased disc (or a crescent moon) in place."""
    r2 = max(1.0, radius) * 2
    n = math.ceil(2 * r2) + 4
    mask = Image.new("L", (n, n), 0)
    draw = ImageDraw.Draw(mask)
    c = n / 2
    draw.ellipse((c - r2, c - r2, c + r2, c + r2), fill=255)
    if crescent:
        dx, dy = r2 * 0.55, -r2 * 0.3
        draw.ellipse((c - r2 + dx, c - r2 + dy, c + r2 + dx, c + r2 + dy), fill=0)
    small = mask.reduce(2)
    img.paste(colour, (round(centre[0] - small.width / 2), round(centre[1] - small.height / 2)),
              small)


