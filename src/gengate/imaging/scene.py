"""The procedural landscape behind :mod:`gengate.imaging` (private to it).

:func:`paint_scene` paints one seeded picture in a :class:`~gengate.imaging.palette.Palette`'s
colours: a gradient sky, sun or moon, clouds or stars, ridges or a skyline, water, hills, trees,
flowers, soft light and a vignette. All randomness comes from one ``random.Random(seed)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw

from gengate.imaging.paint import (
    BILINEAR,
    NEAREST,
    Size,
    disc,
    fill_layer,
    noise_mask,
    radial_light,
    vgradient,
    vignette,
)
from gengate.imaging.palette import Palette, clamp8, mix, scale


@dataclass
class _Scene:
    img: Image.Image
    pal: Palette
    rng: random.Random
    horizon: float
    sun: tuple[float, float, float]  # x, y, radius

    @property
    def s(self) -> float:
        return math.sqrt(self.img.width * self.img.height)


def paint_scene(pal: Palette, seed: int, size: Size) -> Image.Image:
    """One seeded landscape in the palette's colours (RGB, exactly `size`)."""
    w, h = max(1, size[0]), max(1, size[1])
    rng = random.Random(seed)
    horizon = h * rng.uniform(0.5, 0.66)
    low = pal.mood in ("sunset", "golden", "neon")
    s = math.sqrt(w * h)
    radius = s * (rng.uniform(0.035, 0.06) if pal.mood == "night" else rng.uniform(0.05, 0.09))
    sun = (w * rng.uniform(0.15, 0.85), horizon * rng.uniform(*((0.6, 0.9) if low else (0.2, 0.7))),
           radius)
    sky = pal.sky
    img = vgradient((w, h), [(0.0, sky[0]), (horizon / h * 0.55, sky[1]), (horizon / h, sky[2]),
                             (1.0, sky[2])])
    scene = _Scene(img, pal, rng, horizon, sun)
    radial_light(img, sun[:2], s * rng.uniform(0.45, 0.75), pal.sun, 0.6, 2.2)
    if "stars" in pal.features:
        _stars(scene)
    _clouds(scene)
    disc(img, sun[:2], radius, pal.sun, crescent=pal.mood == "night")
    if "city" in pal.features:
        _skyline(scene)
    elif "peaks" in pal.features:
        _ridge(scene)
    if "water" in pal.features:
        _water(scene)
    _hills(scene)
    radial_light(img, sun[:2], max(w, h) * 1.1, pal.sun, 0.22, 1.5)
    vignette(img, 0.28)
    return img


def _stars(sc: _Scene) -> None:
    w, rng = sc.img.width, sc.rng
    draw = ImageDraw.Draw(sc.img)
    for _ in range(int(w * sc.horizon / 1400)):
        x, y = rng.uniform(0, w), sc.horizon * rng.random() ** 1.4
        glow = rng.random() ** 2
        colour = mix(sc.pal.sky[0], (255, 250, 235), 0.35 + 0.65 * glow)
        r = 0.6 + 1.2 * glow * sc.s / 512
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _clouds(sc: _Scene) -> None:
    w, rng, pal = sc.img.width, sc.rng, sc.pal
    band = max(1, round(sc.horizon))
    amount = {"storm": 1.6, "mist": 1.3, "night": 0.5}.get(pal.mood, 1.0) * rng.uniform(0.5, 1.1)
    mask = noise_mask((w, band), rng, (rng.randint(3, 6), rng.randint(2, 4)), 2)
    cut = rng.uniform(118, 138)
    lut = [clamp8((v - cut) * 4.0 * amount) for v in range(256)]
    fade = bytes(clamp8(255 * min(1.0, (0.97 - y / band) / 0.4)) for y in range(band))
    mask = ImageChops.multiply(mask, Image.frombytes("L", (1, band), fade).resize((w, band),
                                                                                 NEAREST))
    light = mix(pal.sky[2], pal.sun, 0.45) if pal.mood != "night" else mix(*pal.sky[1:], 0.3)
    shadow = mix(pal.sky[1], pal.sky[0], 0.35)
    offset = max(1, round(sc.s * 0.012))
    sc.img.paste(shadow, (0, offset), mask.point([v // 2 for v in lut]))
    sc.img.paste(light, (0, 0), mask.point(lut))


def _wave(rng: random.Random, s: float, base: float, amp: float) -> Callable[[float], float]:
    waves = [(2 * math.pi / (s * rng.uniform(0.35, 1.4)), rng.uniform(0, 2 * math.pi),
              rng.uniform(0.3, 1.0)) for _ in range(3)]
    total = sum(a for _, _, a in waves)

    def height(x: float) -> float:
        return base - amp * sum(a * math.sin(f * x + p) for f, p, a in waves) / total

    return height


def _ridge(sc: _Scene) -> None:
    w, h = sc.img.size
    rng, pal = sc.rng, sc.pal
    top = sc.horizon - sc.s * rng.uniform(0.14, 0.3)
    n = max(3, round(w / (sc.s * 0.3)))
    pts = [(w * i / n, rng.uniform(top, sc.horizon - sc.s * 0.04)) for i in range(n + 1)]
    amp = (sc.horizon - top) * 0.35
    for _ in range(3):
        pts = _displace(pts, rng, amp)
        amp *= 0.5
    peak = min(y for _, y in pts)
    rock = mix(pal.land[0], pal.sky[2], 0.35)
    snowy = rng.random() < 0.5 or pal.mood == "winter"
    cap = mix(rock, (250, 250, 255), 0.75) if snowy else mix(rock, pal.sun, 0.35)
    stops = [(peak, cap), (peak + sc.s * 0.05, rock), (sc.horizon, mix(rock, pal.sky[2], 0.35))]
    fill_layer(sc.img, peak, [[*pts, (w, h), (0, h)]], stops)


def _displace(pts: list[tuple[float, float]], rng: random.Random, amp: float
              ) -> list[tuple[float, float]]:
    out = [pts[0]]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        out.append(((x0 + x1) / 2, (y0 + y1) / 2 + rng.uniform(-amp, amp)))
        out.append((x1, y1))
    return out


def _skyline(sc: _Scene) -> None:
    w, h = sc.img.size
    rng, pal, s = sc.rng, sc.pal, sc.s
    rects, windows, x = [], [], 0.0
    while x < w:
        bw, bh = s * rng.uniform(0.04, 0.1), s * rng.uniform(0.06, 0.3)
        rects.append([(x, sc.horizon - bh), (x + bw, sc.horizon - bh), (x + bw, h), (x, h)])
        windows += [(x + bw * rng.uniform(0.15, 0.8), sc.horizon - bh * rng.uniform(0.1, 0.9))
                    for _ in range(int(bh * bw / (s * s) * 900))]
        x += bw * rng.uniform(0.85, 1.1)
    dark = mix(pal.land[2], pal.sky[0], 0.5)
    top = min(poly[0][1] for poly in rects)
    fill_layer(sc.img, top, rects, [(top, mix(dark, pal.sky[2], 0.3)), (sc.horizon, dark)])
    draw, glow = ImageDraw.Draw(sc.img), pal.accents[0]
    size = max(1.0, s / 300)
    for wx, wy in windows:
        draw.rectangle((wx, wy, wx + size, wy + size * 1.4), fill=mix(glow, (255, 230, 150), 0.5))


def _water(sc: _Scene) -> None:
    w, h = sc.img.size
    rng, pal = sc.rng, sc.pal
    y0 = round(sc.horizon)
    if y0 >= h:
        return
    source = sc.img.crop((0, max(0, 2 * y0 - h), w, y0)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    deep = scale(mix(pal.sky[0], pal.land[3], 0.3), 0.8)
    water = Image.blend(source.resize((w, h - y0), BILINEAR), Image.new("RGB", (w, h - y0), deep),
                        0.4)
    sc.img.paste(water, (0, y0))
    mask = Image.new("L", (w, h - y0), 0)
    draw = ImageDraw.Draw(mask)
    sx, _, r = sc.sun
    for _ in range(int(w * (h - y0) / 900)):
        dy = (h - y0) * rng.random() ** 1.6
        near = rng.random() < 0.6
        x = rng.gauss(sx, r * (0.6 + dy / max(1, h - y0))) if near else rng.uniform(0, w)
        half = r * rng.uniform(0.2, 1.2) * (0.4 + dy / max(1, h - y0))
        draw.line((x - half, dy, x + half, dy), fill=rng.randint(60, 200) if near else 50,
                  width=max(1, round(sc.s / 400)))
    sc.img.paste(mix(pal.sun, (255, 255, 255), 0.3), (0, y0), mask)


def _hills(sc: _Scene) -> None:
    w, h = sc.img.size
    rng, pal, s = sc.rng, sc.pal, sc.s
    water = "water" in pal.features
    count = 1 if water else rng.choice((2, 3, 3))
    for k in range(count):
        depth = (k + 1) / count
        base = h * 0.88 if water else sc.horizon + (h - sc.horizon) * (0.05 + 0.55 * k / count)
        ridge = _wave(rng, s, base, s * rng.uniform(0.03, 0.09))
        tilt = s * rng.uniform(-0.25, 0.25) if water else 0.0
        step = max(2.0, w / 96)
        pts = [(x, ridge(x) + tilt * (x / w - 0.5) * 2)
               for x in (min(float(w), i * step) for i in range(math.ceil(w / step) + 1))]
        colour = pal.land[min(3, k + 4 - count)]
        hazed = mix(colour, pal.sky[2], 0.4 * (1 - depth))
        polys = [[*pts, (w, h), (0, h)]]
        ellipses: list[tuple[float, float, float, float]] = []
        if k == count - 1 or (k == count - 2 and "trees" in pal.features):
            _decorate(sc, pts, polys, ellipses, depth)
        top = min([y for _, y in pts] + [y for poly in polys for _, y in poly]
                  + [e[1] for e in ellipses]) - 2
        stops = [(top - s * 0.1, mix(hazed, pal.sun, 0.25)), (base, hazed),
                 (h, scale(hazed, 0.7))]
        fill_layer(sc.img, top, polys, stops, ellipses)
        if k == count - 1 and "flowers" in pal.features:
            _flowers(sc, pts)


def _decorate(sc: _Scene, pts: list[tuple[float, float]], polys: list[list[tuple[float, float]]],
              ellipses: list[tuple[float, float, float, float]], depth: float) -> None:
    """Trees on a hill crest: pines for forests, else maybe one round tree."""
    rng, s = sc.rng, sc.s
    if "trees" in sc.pal.features:
        centre, spread = rng.uniform(0, sc.img.width), sc.img.width * rng.uniform(0.2, 0.6)
        for _ in range(rng.randint(6, 16)):
            x, y = _on_ridge(pts, rng.gauss(centre, spread))
            th = s * rng.uniform(0.04, 0.1) * (0.6 + depth)
            tw = th * rng.uniform(0.28, 0.4)
            polys.append([(x - tw, y + 2), (x, y - th), (x + tw, y + 2)])
            polys.append([(x - tw * 0.7, y - th * 0.35), (x, y - th * 1.25),
                          (x + tw * 0.7, y - th * 0.35)])
    elif "tree" in sc.pal.features or rng.random() < 0.35:
        x, y = _on_ridge(pts, rng.uniform(0.15, 0.85) * sc.img.width)
        th = s * rng.uniform(0.08, 0.14)
        cr = th * rng.uniform(0.38, 0.5)
        polys.append([(x - th * 0.04, y + 2), (x - th * 0.03, y - th * 0.6),
                      (x + th * 0.03, y - th * 0.6), (x + th * 0.04, y + 2)])
        ellipses.append((x - cr * 1.3, y - th - cr * 0.6, x + cr * 1.3, y - th + cr * 1.2))


def _on_ridge(pts: list[tuple[float, float]], x: float) -> tuple[float, float]:
    idx = min(range(len(pts)), key=lambda i: abs(pts[i][0] - x))
    return pts[idx]


def _flowers(sc: _Scene, pts: list[tuple[float, float]]) -> None:
    w, h = sc.img.size
    rng, accents = sc.rng, sc.pal.accents
    draw = ImageDraw.Draw(sc.img)
    for _ in range(int(w * h / 2200)):
        x, ridge_y = _on_ridge(pts, rng.uniform(0, w))
        y = ridge_y + (h - ridge_y) * rng.random() ** 0.8 + 3
        near = (y - ridge_y) / max(1.0, h - ridge_y)
        r = (0.6 + 2.4 * near) * sc.s / 512
        colour = mix(accents[rng.randrange(len(accents))], (255, 255, 255), 0.15)
        draw.ellipse((x - r, y - r * 0.8, x + r, y + r * 0.8), fill=colour)

