"""Prompt palettes behind :mod:`gengate.imaging` (private to it).

The words of a prompt steer a :class:`Palette` (sky moods, ground themes, colour words and scene
motifs, see :data:`SKIES`, :data:`LANDS`, :data:`TINTS` and :data:`FEATURES`); a SHA-256 of the
prompt decides the rest. Also the colour arithmetic the painters share and :func:`derive_seed`,
the only source of seeds: randomness comes from ``random.Random`` objects seeded through it,
never from ``hash()`` or global state.
"""

from __future__ import annotations

import colorsys
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

RGB = tuple[int, int, int]

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


def _first_theme(words: set[str],
                 themes: Sequence[tuple[str, frozenset[str], tuple[RGB, ...]]]) -> str | None:
    return next((name for name, triggers, _ in themes if words & triggers), None)


def _theme(name: str, themes: Sequence[tuple[str, frozenset[str], tuple[RGB, ...]]]
           ) -> tuple[RGB, ...]:
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
