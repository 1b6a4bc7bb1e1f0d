"""Pixel-level building blocks behind :mod:`gengate.imaging` (private to it).

* A procedural painter: a :class:`Palette` derived from the words of a prompt (colour, mood and
  landscape words steer it, a SHA-256 of the prompt decides the rest) and :func:`paint_scene`, a
  seeded landscape (gradient sky, sun or moon, clouds or stars, ridges or a skyline, water, hills,
  trees, flowers, soft light and a vignette).
* Compositing helpers for the actions: mirror-padded outpainting, feathered inpainting, mesh
  warps, colour jitter, smooth noise masks and convex image mixes.

Everything is deterministic: randomness comes only from ``random.Random`` objects seeded through
:func:`derive_seed`, never from ``hash()`` or global state.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

RGB = tuple[int, int, int]
Size = tuple[int, int]
Stops = Sequence[tuple[float, RGB]]

BOX = Image.Resampling.BOX
BILINEAR = Image.Resampling.BILINEAR
BICUBIC = Image.Resampling.BICUBIC
NEAREST = Image.Resampling.NEAREST

# Sky moods in priority order: (name, trigger words, (zenith, middle, horizon, sun)).
SKIES: tuple[tuple[str, frozenset[str], tuple[RGB, RGB, RGB, RGB]], ...] = (
    ("neon", frozenset({"neon", "cyberpunk", "synthwave", "vaporwave", "retrowave"}),
     ((18, 6, 42), (104, 22, 120), (246, 76, 158), (255, 214, 120))),
    ("night", frozenset({"night", "midnight", "moon", "moonlight", "moonlit", "starry", "stars",
                         "galaxy", "space", "cosmic", "nebula", "dark"}),
     ((6, 10, 34), (22, 32, 74), (62, 70, 122), (238, 236, 214))),
    ("sunset", frozenset({"sunset", "dusk", "evening", "twilight"}),
     ((46, 36, 94), (204, 84, 100), (255, 174, 96), (255, 224, 160))),
    ("golden", frozenset({"golden", "autumn", "warm", "honey", "amber"}),
     ((92, 104, 166), (232, 154, 98), (255, 214, 146), (255, 242, 196))),
    ("dawn", frozenset({"dawn", "sunrise", "morning", "pastel"}),
     ((98, 118, 178), (236, 170, 178), (255, 224, 198), (255, 246, 222))),
    ("storm", frozenset({"storm", "stormy", "rain", "rainy", "cloudy", "thunder", "gloomy"}),
     ((44, 50, 62), (86, 94, 110), (150, 152, 162), (212, 216, 222))),
    ("mist", frozenset({"fog", "foggy", "mist", "misty", "haze", "hazy", "ethereal"}),
     ((146, 158, 170), (188, 196, 202), (226, 228, 226), (252, 250, 240))),
    ("winter", frozenset({"snow", "snowy", "winter", "ice", "icy", "frozen", "arctic"}),
     ((140, 172, 212), (198, 216, 236), (242, 246, 252), (255, 255, 248))),
    ("day", frozenset({"sunny", "day", "noon", "summer", "clear", "sky", "bright"}),
     ((62, 122, 196), (134, 184, 232), (222, 236, 244), (255, 250, 226))),
)
DEFAULT_SKIES = ("day", "golden", "sunset", "dawn", "mist", "night")

# Ground themes in priority order: (name, trigger words, four colours far -> near).
LANDS: tuple[tuple[str, frozenset[str], tuple[RGB, RGB, RGB, RGB]], ...] = (
    ("volcanic", frozenset({"volcano", "volcanic", "lava", "fire", "hell", "inferno"}),
     ((112, 70, 66), (86, 48, 46), (60, 32, 32), (34, 18, 20))),
    ("snow", frozenset({"snow", "snowy", "winter", "ice", "icy", "frozen", "arctic"}),
     ((214, 224, 238), (190, 204, 226), (160, 178, 206), (126, 144, 178))),
    ("desert", frozenset({"desert", "sand", "sandy", "dune", "dunes", "beach", "canyon", "mars"}),
     ((232, 194, 138), (214, 164, 104), (184, 126, 76), (144, 92, 56))),
    ("autumn", frozenset({"autumn", "fall", "harvest", "pumpkin"}),
     ((216, 152, 84), (190, 112, 58), (150, 74, 42), (98, 48, 32))),
    ("forest", frozenset({"forest", "jungle", "woods", "woodland", "rainforest", "tree", "trees"}),
     ((86, 124, 106), (54, 98, 72), (32, 74, 52), (18, 50, 34))),
    ("rock", frozenset({"mountain", "mountains", "cliff", "rock", "rocky", "castle", "city",
                        "ruins", "stone", "alien", "planet"}),
     ((130, 128, 152), (102, 100, 124), (76, 74, 96), (48, 46, 64))),
    ("meadow", frozenset({"meadow", "field", "fields", "grass", "garden", "spring", "park",
                          "valley", "farm", "countryside", "hill", "hills"}),
     ((152, 180, 102), (106, 152, 72), (68, 118, 50), (40, 82, 36))),
)
DEFAULT_LANDS = ("meadow", "forest", "desert", "rock", "autumn")

TINTS: dict[str, RGB] = {
    "red": (214, 48, 48), "crimson": (182, 22, 52), "scarlet": (226, 36, 30),
    "orange": (242, 132, 40), "amber": (242, 172, 42), "gold": (236, 182, 62),
    "golden": (236, 182, 62), "yellow": (240, 216, 66), "lemon": (246, 232, 90),
    "green": (70, 162, 72), "emerald": (30, 152, 102), "lime": (152, 212, 62),
    "teal": (30, 140, 140), "turquoise": (62, 202, 190), "cyan": (62, 202, 232),
    "aqua": (80, 210, 220), "blue": (52, 100, 212), "azure": (70, 150, 240),
    "navy": (30, 40, 112), "indigo": (72, 52, 152), "purple": (132, 62, 172),
    "violet": (152, 92, 212), "lavender": (182, 162, 232), "magenta": (212, 52, 172),
    "pink": (242, 142, 182), "rose": (232, 112, 142), "brown": (132, 86, 52),
    "black": (22, 22, 26), "white": (242, 242, 242), "grey": (130, 130, 136),
    "gray": (130, 130, 136), "silver": (190, 194, 202), "copper": (188, 110, 64),
}

FEATURES: dict[str, str] = {
    **dict.fromkeys(("ocean", "sea", "lake", "river", "beach", "water", "island", "coast",
                     "harbor", "pond", "waves"), "water"),
    **dict.fromkeys(("forest", "tree", "trees", "woods", "woodland", "jungle", "pine",
                     "pines"), "trees"),
    **dict.fromkeys(("flower", "flowers", "meadow", "garden", "blossom", "bloom", "spring",
                     "field", "tulips", "roses"), "flowers"),
    **dict.fromkeys(("mountain", "mountains", "peak", "peaks", "alps", "volcano", "cliff",
                     "canyon", "valley"), "peaks"),
    **dict.fromkeys(("city", "skyline", "cyberpunk", "street", "building", "buildings",
                     "town", "tower", "metropolis", "downtown"), "city"),
    **dict.fromkeys(("night", "starry", "stars", "galaxy", "space", "cosmic", "nebula"),
                    "stars"),
}

_WORD = re.compile(r"[a-z]+")
_PARAMS = re.compile(r"(?:^|\s)--[a-z]")


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any parts, stable across processes and platforms."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def prompt_key(prompt: str) -> str:
    """The prompt text that drives the art: lower case, without ``--params`` and image URLs."""
    text = _PARAMS.split(prompt.lower(), maxsplit=1)[0]
    return " ".join(t for t in text.split() if not t.startswith(("http://", "https://")))


# ---------------------------------------------------------------------------- colour arithmetic


def clamp8(value: float) -> int:
    """Round and clamp to 0..255."""
    return 0 if value <= 0 else 255 if value >= 255 else round(value)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear interpolation between two colours."""
    return (clamp8(a[0] + (b[0] - a[0]) * t), clamp8(a[1] + (b[1] - a[1]) * t),
            clamp8(a[2] + (b[2] - a[2]) * t))


def scale(c: RGB, factor: float) -> RGB:
    """Brightness scaling."""
    return (clamp8(c[0] * factor), clamp8(c[1] * factor), clamp8(c[2] * factor))


def _hsv(c: RGB) -> tuple[float, float, float]:
    return colorsys.rgb_to_hsv(c[0] / 255, c[1] / 255, c[2] / 255)


def _rgb(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(1.0, s), min(1.0, v))
    return (clamp8(r * 255), clamp8(g * 255), clamp8(b * 255))


def rotate_hue(c: RGB, turn: float) -> RGB:
    """Rotate the hue by `turn` (a fraction of the colour wheel)."""
    h, s, v = _hsv(c)
    return _rgb(h + turn, s, v)


def tint(c: RGB, toward: RGB, t: float) -> RGB:
    """Move `c` toward the hue of `toward` while mostly keeping its own brightness."""
    _, _, v = _hsv(c)
    th, ts, tv = _hsv(toward)
    return mix(c, _rgb(th, ts, v * 0.7 + tv * 0.3), t)


# ---------------------------------------------------------------------------------- palette


@dataclass(frozen=True)
class Palette:
    """Colours and motifs of one prompt; the tiles of a grid share it, slightly jittered."""

    sky: tuple[RGB, RGB, RGB]  # zenith, middle, horizon
    sun: RGB
    land: tuple[RGB, RGB, RGB, RGB]  # far ... near
    accents: tuple[RGB, ...]
    features: frozenset[str]
    mood: str

    def jittered(self, seed: int) -> Palette:
        """A sibling palette with a slightly rotated hue and brightness."""
        rng = random.Random(seed)
        turn, bright = rng.uniform(-0.025, 0.025), rng.uniform(0.94, 1.06)

        def shift(c: RGB) -> RGB:
            return scale(rotate_hue(c, turn), bright)

        sky = (shift(self.sky[0]), shift(self.sky[1]), shift(self.sky[2]))
        land = (shift(self.land[0]), shift(self.land[1]), shift(self.land[2]),
                shift(self.land[3]))
        return replace(self, sky=sky, land=land)


def _first_theme(words: set[str], themes: Sequence[tuple[str, frozenset[str], tuple]]
                 ) -> str | None:
    return next((name for name, triggers, _ in themes if words & triggers), None)


def _theme(name: str, themes: Sequence[tuple[str, frozenset[str], tuple]]) -> tuple:
    return next(colours for key, _, colours in themes if key == name)


def make_palette(prompt: str) -> Palette:
    """The palette of a prompt: colour, mood and landscape words steer it, its hash the rest."""
    key = prompt_key(prompt)
    words = _WORD.findall(key)
    wordset = set(words)
    rng = random.Random(derive_seed("palette", key))
    mood = _first_theme(wordset, SKIES) or rng.choice(DEFAULT_SKIES)
    ground = _first_theme(wordset, LANDS)
    tints = [TINTS[w] for w in words if w in TINTS][:3]
    turn = rng.uniform(-0.03, 0.03)
    land_turn = turn if ground or tints or rng.random() < 0.5 else rng.uniform(-0.45, 0.45)
    zenith, middle, horizon, sun = (rotate_hue(c, turn) for c in _theme(mood, SKIES))
    land = [rotate_hue(c, land_turn) for c in _theme(ground or rng.choice(DEFAULT_LANDS), LANDS)]
    if tints:
        land = [tint(c, tints[0], 0.6) for c in land]
        zenith, middle = tint(zenith, tints[-1], 0.3), tint(middle, tints[-1], 0.35)
        horizon = tint(horizon, tints[-1], 0.2)
    features = {FEATURES[w] for w in words if w in FEATURES}
    if mood in ("night", "neon"):
        features.add("stars")
    if not features - {"stars"}:
        features.add(rng.choice(("peaks", "trees", "flowers", "water", "peaks", "tree")))
    accents = (*tints, scale(rotate_hue(land[1], 0.5), 1.5), sun, (250, 246, 236))
    return Palette(sky=(zenith, middle, horizon), sun=sun,
                   land=(land[0], land[1], land[2], land[3]), accents=accents[:4],
                   features=frozenset(features), mood=mood)


# ----------------------------------------------------------------------------- primitives


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
    box = tuple(min(256.0, max(0.0, 128 + (v - c) * k))
                for v, c in ((x0, cx), (y0, cy), (x1, cx), (y1, cy)))
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


# ------------------------------------------------------------------------------- the scene


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
        polys, ellipses = [[*pts, (w, h), (0, h)]], []
        if k == count - 1 or (k == count - 2 and "trees" in pal.features):
            _decorate(sc, pts, polys, ellipses, depth)
        top = min([y for _, y in pts] + [y for poly in polys for _, y in poly]
                  + [e[1] for e in ellipses]) - 2
        stops = [(top - s * 0.1, mix(hazed, pal.sun, 0.25)), (base, hazed),
                 (h, scale(hazed, 0.7))]
        fill_layer(sc.img, top, polys, stops, ellipses)
        if k == count - 1 and "flowers" in pal.features:
            _flowers(sc, pts)


def _decorate(sc: _Scene, pts: list[tuple[float, float]], polys: list, ellipses: list,
              depth: float) -> None:
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


# ----------------------------------------------------------------------- action helpers


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


# ------------------------------------------------------------------------------ describe

COLOUR_NAMES: tuple[tuple[str, RGB], ...] = (
    ("black", (18, 18, 20)), ("charcoal", (54, 54, 60)), ("grey", (128, 128, 128)),
    ("silver", (192, 192, 198)), ("white", (246, 246, 246)), ("ivory", (250, 244, 220)),
    ("beige", (222, 202, 164)), ("tan", (196, 160, 112)), ("brown", (122, 74, 40)),
    ("chocolate", (78, 46, 28)), ("maroon", (122, 22, 34)), ("crimson", (188, 20, 52)),
    ("red", (222, 30, 30)), ("coral", (250, 124, 100)), ("peach", (252, 202, 164)),
    ("orange", (246, 140, 30)), ("amber", (250, 182, 36)), ("gold", (218, 178, 56)),
    ("yellow", (246, 226, 60)), ("olive", (122, 122, 42)), ("lime", (170, 222, 60)),
    ("green", (60, 160, 60)), ("forest green", (34, 98, 50)), ("emerald", (30, 160, 110)),
    ("teal", (20, 128, 128)), ("turquoise", (62, 210, 200)), ("cyan", (40, 200, 232)),
    ("sky blue", (124, 182, 236)), ("blue", (40, 80, 204)), ("navy", (24, 34, 100)),
    ("midnight blue", (18, 22, 64)),
    ("indigo", (74, 50, 150)), ("purple", (128, 50, 162)), ("violet", (162, 102, 222)),
    ("lavender", (192, 172, 232)), ("magenta", (212, 40, 172)), ("pink", (246, 162, 192)),
    ("rose", (222, 100, 132)),
)


@lru_cache(maxsize=4096)
def _lab(c: RGB) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour."""
    def linear(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4

    r, g, b = linear(c[0]), linear(c[1]), linear(c[2])
    xyz = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b,
           (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883)
    fx, fy, fz = (t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def colour_name(c: RGB) -> str:
    """The nearest name in :data:`COLOUR_NAMES` (Euclidean distance in CIE Lab)."""
    lab = _lab(c)
    return min(COLOUR_NAMES, key=lambda entry: math.dist(lab, _lab(entry[1])))[0]


def dominant_colour_names(thumb: Image.Image, limit: int = 3) -> list[str]:
    """Names of the most common colours of a small RGB image, most common first (at least one)."""
    quantized = thumb.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    weights: dict[str, int] = {}
    for count, index in quantized.getcolors() or []:
        rgb = (palette[index * 3], palette[index * 3 + 1], palette[index * 3 + 2])
        name = colour_name(rgb)
        weights[name] = weights.get(name, 0) + count
    ranked = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
    return [name for name, _ in ranked[:limit]] or ["grey"]


def image_traits(thumb: Image.Image) -> dict[str, str]:
    """Words for the light, contrast, warmth, detail and saturation of a small RGB image."""
    gray = thumb.convert("L")
    mean, spread = ImageStat.Stat(gray).mean[0], ImageStat.Stat(gray).stddev[0]
    r, _, b = ImageStat.Stat(thumb).mean
    saturation = ImageStat.Stat(thumb.convert("HSV")).mean[1]
    edges = gray.filter(ImageFilter.FIND_EDGES)
    if edges.width > 2 and edges.height > 2:
        edges = edges.crop((1, 1, edges.width - 1, edges.height - 1))
    busy = ImageStat.Stat(edges).mean[0]
    light = ("dark" if mean < 70 else "dim" if mean < 110 else "bright" if mean > 170
             else "soft")
    vivid = "deep" if light == "dark" else "vivid"
    return {
        "light": light,
        "lighting": {"dark": "low-key", "bright": "bright daylight"}.get(light, light),
        "mood": {"dark": "moody", "dim": "atmospheric", "bright": "airy"}.get(light, "calm"),
        "contrast": ("high contrast" if spread > 65 else "low contrast" if spread < 25
                     else "gentle contrast"),
        "warmth": "warm" if r - b > 18 else "cool" if b - r > 18 else "neutral",
        "detail": "busy, intricate" if busy > 24 else "minimal, clean" if busy < 6 else "detailed",
        "style": (f"{vivid} digital illustration," if saturation > 140 else
                  "muted painterly" if saturation < 50 else "cinematic"),
        "saturation": vivid if saturation > 140 else "muted" if saturation < 50 else "natural",
    }
