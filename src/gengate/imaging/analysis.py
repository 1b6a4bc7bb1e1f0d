"""Image analysis behind :func:`gengate.imaging.describe` (private to it).

Names for the dominant colours of an image (nearest neighbour in CIE Lab) and words for its
light, contrast, warmth, detail and saturation.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import cast

from PIL import Image, ImageFilter, ImageStat

from gengate.imaging.palette import RGB

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
    for count, index in cast("list[tuple[int, int]]", quantized.getcolors() or []):
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
