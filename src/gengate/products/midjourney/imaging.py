"""The image layer of the built-in ``local`` provider.

Pure functions: bytes or parameters in, PIL images or PNG bytes out; nothing here touches the disk,
the network or global state, and every result is deterministic given its inputs. Generated images
are RGB. A "grid" is four tiles of equal size laid out ``[tl, tr] / [bl, br]``.

* decoding and encoding (from :mod:`gengate.imaging.codec`, which every product uses):
  :func:`decode_image`, :func:`decode_base64_image`, :func:`encode_png`;
* geometry: :func:`aspect_of`, :func:`tile_size`, :func:`split_grid`;
* generation: :func:`render_grid`, :func:`render_single` (procedural landscapes whose palette and
  motifs follow the prompt's words, see :mod:`gengate.imaging.palette` and
  :mod:`gengate.imaging.scene`);
* actions: :func:`upscale_quadrant`, :func:`upscale`, :func:`vary_grid`, :func:`variation_grid`,
  :func:`zoom_out`, :func:`pan`, :func:`make_square`, :func:`inpaint`, :func:`blend`,
  :func:`describe`.

User-supplied images that cannot be used raise :class:`gengate.errors.BadRequest` with a message
naming the caller's label; invalid arguments from the caller (a zoom factor of 9, a direction of
"diagonal") raise :class:`ValueError`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache

from PIL import Image, ImageChops, ImageFilter, ImageOps

from gengate import errors
from gengate.imaging.analysis import dominant_colour_names, image_traits
from gengate.imaging.codec import decode_base64_image, decode_image, encode_png, flatten
from gengate.imaging.composite import (
    blurred,
    convex_mix,
    feather_mask,
    inpaint_tile,
    outpaint,
    vary_tile,
)
from gengate.imaging.paint import noise_mask
from gengate.imaging.palette import Palette, derive_seed, make_palette, prompt_key
from gengate.imaging.scene import paint_scene

__all__ = [
    "Aspect",
    "aspect_of",
    "blend",
    "decode_base64_image",
    "decode_image",
    "describe",
    "encode_png",
    "inpaint",
    "make_square",
    "pan",
    "render_grid",
    "render_single",
    "split_grid",
    "tile_size",
    "upscale",
    "upscale_quadrant",
    "variation_grid",
    "vary_grid",
    "zoom_out",
]

Aspect = tuple[int, int]

TILE_AREA = 512 * 512
MAX_SIDE = 4096
MAX_RATIO = 14
MIN_SIDE = 64
SQUARE_TILE = 512
VARIATION_STRENGTH = 0.45
LANCZOS = Image.Resampling.LANCZOS
# Ratios Midjourney users type; a size within 1.2 % of one of them is reported as it.
COMMON_RATIOS: tuple[Aspect, ...] = (
    (1, 1), (4, 5), (5, 4), (2, 3), (3, 2), (3, 4), (4, 3), (9, 16), (16, 9), (4, 7), (7, 4),
    (1, 2), (2, 1), (3, 7), (7, 3), (5, 8), (8, 5), (1, 3), (3, 1),
)


# ---------------------------------------------------------------------------- geometry


def aspect_of(size: tuple[int, int]) -> Aspect:
    """The aspect ratio of a size as small integers: exact when the reduced ratio is small
    (400x500 -> 4:5), else a common ratio within 1.2 % (1456x816 -> 16:9), else the nearest
    fraction with a denominator of at most 21 (ratios beyond 21:1 become N:1)."""
    w, h = size
    if w <= 0 or h <= 0:
        raise ValueError(f"invalid size {w}x{h}")
    g = math.gcd(w, h)
    if max(w // g, h // g) <= 21:
        return (w // g, h // g)
    ratio = w / h
    best = min(COMMON_RATIOS, key=lambda r: abs(math.log(r[0] / r[1] / ratio)))
    if abs(math.log(best[0] / best[1] / ratio)) <= 0.012:
        return best
    if max(ratio, 1 / ratio) > 21:
        return (round(ratio), 1) if w >= h else (1, round(1 / ratio))
    if w >= h:
        wide = Fraction(w, h).limit_denominator(21)
        return (wide.numerator, wide.denominator)
    tall = Fraction(h, w).limit_denominator(21)
    return (tall.denominator, tall.numerator)


def tile_size(aspect: Aspect) -> tuple[int, int]:
    """The size of one tile of a grid: area about 512x512, multiples of 8, the ratio as exact as
    rounding allows (1:1 -> 512x512, 4:5 -> 448x560, 2:3 -> 416x624). Ratios beyond 14:1 are
    clamped to 14:1; no side is below 64."""
    a, b = aspect
    if a <= 0 or b <= 0:
        raise ValueError(f"invalid aspect {a}:{b}")
    return _tile_size(min(float(MAX_RATIO), max(1 / MAX_RATIO, a / b)))


@lru_cache(maxsize=256)
def _tile_size(ratio: float) -> tuple[int, int]:
    ideal_h = math.sqrt(TILE_AREA / ratio)
    best: tuple[float, int, int] | None = None
    for h in range(max(MIN_SIDE, 8 * math.floor(ideal_h * 0.8 / 8)), math.ceil(ideal_h * 1.2) + 8,
                   8):
        for w in (8 * math.floor(h * ratio / 8), 8 * math.ceil(h * ratio / 8)):
            w = max(MIN_SIDE, w)
            cost = 12 * abs(math.log(w / h / ratio)) + abs(math.log(w * h / TILE_AREA))
            if best is None or cost < best[0]:
                best = (cost, w, h)
    assert best is not None
    return best[1], best[2]


def split_grid(grid: Image.Image) -> list[Image.Image]:
    """The four tiles of a grid, ``[tl, tr, bl, br]`` (an odd middle row/column is dropped)."""
    w, h = grid.size
    if w < 2 or h < 2:
        raise ValueError(f"a {w}x{h} image is too small to be a grid")
    tw, th = w // 2, h // 2
    boxes = ((0, 0), (w - tw, 0), (0, h - th), (w - tw, h - th))
    return [grid.crop((x, y, x + tw, y + th)) for x, y in boxes]


def _grid(tiles: Sequence[Image.Image]) -> Image.Image:
    tw, th = tiles[0].size
    grid = Image.new("RGB", (2 * tw, 2 * th))
    for index, tile in enumerate(tiles):
        grid.paste(tile, ((index % 2) * tw, (index // 2) * th))
    return grid


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """RGB copy of `image` resized (center-cropped if the aspect differs) to `size`."""
    image = image.convert("RGB")
    if image.size == size:
        return image
    return ImageOps.fit(image, size, LANCZOS)


# --------------------------------------------------------------------------- generation


def _tile(palette: Palette, key: str, seed: int, index: int, size: tuple[int, int],
          tag: str = "tile") -> Image.Image:
    jitter = derive_seed("jitter", tag, key, seed, index)
    return paint_scene(palette.jittered(jitter), derive_seed(tag, key, seed, index), size)


def render_grid(prompt: str, seed: int, aspect: Aspect,
                tile: tuple[int, int] | None = None) -> Image.Image:
    """A 2x2 grid of four different pictures for (prompt, seed), ``2 * tile_size(aspect)``
    (or ``2 * tile`` when given).

    Tile 0 equals ``render_single(prompt, seed, tile_size(aspect))``.
    """
    size = tile or tile_size(aspect)
    palette, key = make_palette(prompt), prompt_key(prompt)
    return _grid([_tile(palette, key, seed, index, size) for index in range(4)])


def render_single(prompt: str, seed: int, size: tuple[int, int]) -> Image.Image:
    """One picture for (prompt, seed) at `size`, in the style of :func:`render_grid`."""
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"invalid size {size[0]}x{size[1]}")
    return _tile(make_palette(prompt), prompt_key(prompt), seed, 0, size)


# ------------------------------------------------------------------------------ actions


def upscale_quadrant(grid: Image.Image, index: int, factor: int = 2) -> Image.Image:
    """Tile `index` (1..4 = tl, tr, bl, br) of a grid, LANCZOS-resampled `factor` times."""
    if index not in (1, 2, 3, 4):
        raise ValueError(f"quadrant index must be 1..4, not {index}")
    return upscale(split_grid(grid)[index - 1], factor)


def upscale(image: Image.Image, factor: float, *, creative: bool = False) -> Image.Image:
    """LANCZOS upscale by `factor`, the longest side capped at 4096 (the factor shrinks to fit).

    ``creative`` adds detail: an unsharp mask and a fine texture seeded by the image content.
    """
    if not factor > 0 or math.isinf(factor):
        raise ValueError(f"invalid upscale factor {factor}")
    w, h = image.size
    scale = min(factor, MAX_SIDE / max(w, h))
    size = (min(MAX_SIDE, max(1, round(w * scale))), min(MAX_SIDE, max(1, round(h * scale))))
    out = image.convert("RGB")
    out = out.resize(size, LANCZOS) if size != out.size else out.copy()
    return _add_detail(out) if creative else out


def _add_detail(image: Image.Image) -> Image.Image:
    thumb = image.resize((32, 32), Image.Resampling.BOX).tobytes()
    rng = random.Random(derive_seed("creative", image.size, thumb.hex()))
    sharp = image.filter(ImageFilter.UnsharpMask(radius=2, percent=90, threshold=2))
    grain = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
    grain = grain.point([v * 11 // 256 for v in range(256)])
    return ImageChops.add(sharp, Image.merge("RGB", (grain, grain, grain)), 1.0, -5)


def vary_grid(source: Image.Image, prompt: str, seed: int, strength: float,
              tile: tuple[int, int]) -> Image.Image:
    """Four variations of one image at `tile` size: warped, colour-jittered and partly repainted
    from re-renders with nearby seeds. `strength` 0.15 is subtle, 0.45 strong (0..1)."""
    strength = min(1.0, max(0.0, strength))
    base = _fit(source, tile)
    palette, key = make_palette(prompt), prompt_key(prompt)
    tiles = []
    for index in range(4):
        rng = random.Random(derive_seed("vary", key, seed, index, strength))
        art = _tile(palette, key, seed + index + 1, 0, tile)
        tiles.append(vary_tile(base, art, rng, strength))
    return _grid(tiles)


def variation_grid(parent_grid: Image.Image, index: int, prompt: str, seed: int) -> Image.Image:
    """Midjourney V1..V4: a grid of four strong variations of quadrant `index` of a grid."""
    if index not in (1, 2, 3, 4):
        raise ValueError(f"quadrant index must be 1..4, not {index}")
    quadrant = split_grid(parent_grid)[index - 1]
    return vary_grid(quadrant, prompt, seed, VARIATION_STRENGTH, quadrant.size)


def _extend_grid(small: Image.Image, size: tuple[int, int], offset: tuple[int, int], prompt: str,
                 seed: int, tag: str) -> Image.Image:
    """Four outpaintings of `small` placed at `offset` on a `size` canvas."""
    palette, key = make_palette(prompt), prompt_key(prompt)
    tiles = []
    for index in range(4):
        rng = random.Random(derive_seed(tag, "rng", key, seed, index))
        art = _tile(palette, key, seed, index, size, tag)
        tiles.append(outpaint(small, size, offset, art, rng))
    return _grid(tiles)


def zoom_out(image: Image.Image, factor: float, prompt: str, seed: int,
             tile: tuple[int, int]) -> Image.Image:
    """Zoom out by `factor` (1..4; Midjourney uses 1.5 and 2): four tiles of size `tile`, each the
    image shrunk and centred on a canvas `factor` times larger whose border is a seeded re-render
    blended into the image's edges."""
    if not 1.0 <= factor <= 4.0:
        raise ValueError(f"zoom factor must be between 1 and 4, not {factor}")
    tw, th = tile
    inner = (max(1, round(tw / factor)), max(1, round(th / factor)))
    offset = ((tw - inner[0]) // 2, (th - inner[1]) // 2)
    return _extend_grid(_fit(image, inner), (tw, th), offset, prompt, seed, f"zoom{factor}")


def pan(image: Image.Image, direction: str, prompt: str, seed: int) -> Image.Image:
    """Extend the canvas by 50 % towards `direction` (left, right, up, down): four tiles whose
    area is about 512x512 (a 1024x1024 image panned left gives 624x416 tiles, ratio 3:2)."""
    if direction not in ("left", "right", "up", "down"):
        raise ValueError(f"pan direction must be left, right, up or down, not {direction!r}")
    w, h = image.size
    horizontal = direction in ("left", "right")
    cw, ch = (w * 1.5, h) if horizontal else (w, h * 1.5)
    k = math.sqrt(TILE_AREA / (cw * ch))
    tw, th = max(8, 8 * round(cw * k / 8)), max(8, 8 * round(ch * k / 8))
    iw, ih = (max(1, round(tw / 1.5)), th) if horizontal else (tw, max(1, round(th / 1.5)))
    offset = {"left": (tw - iw, 0), "right": (0, 0), "up": (0, th - ih), "down": (0, 0)}[direction]
    small = image.convert("RGB").resize((iw, ih), LANCZOS)
    return _extend_grid(small, (tw, th), offset, prompt, seed, f"pan-{direction}")


def make_square(image: Image.Image, prompt: str, seed: int) -> Image.Image:
    """Four 512x512 tiles: the image centred, its shorter side extended with seeded re-renders."""
    w, h = image.size
    k = SQUARE_TILE / max(w, h)
    iw, ih = max(1, round(w * k)), max(1, round(h * k))
    offset = ((SQUARE_TILE - iw) // 2, (SQUARE_TILE - ih) // 2)
    small = image.convert("RGB").resize((iw, ih), LANCZOS)
    return _extend_grid(small, (SQUARE_TILE, SQUARE_TILE), offset, prompt, seed, "square")


def inpaint(image: Image.Image, mask: Image.Image, prompt: str, seed: int,
            tile: tuple[int, int]) -> Image.Image:
    """Vary region: four tiles of size `tile` where the mask's white area (>= 128) is repainted
    with different seeded re-renders and the black area is kept (exactly, when `tile` equals the
    image size). Raises BadRequest if the mask's size differs from the image's or it has no
    white pixel."""
    if mask.size != image.size:
        raise errors.BadRequest(f"mask is {mask.width}x{mask.height} but the image is "
                                f"{image.width}x{image.height}; they must be the same size")
    gray = mask if mask.mode == "L" else flatten(mask, "L")
    if tile != image.size:
        gray = gray.resize(tile, Image.Resampling.BILINEAR)
    redraw = gray.point([255 if v >= 128 else 0 for v in range(256)])
    if redraw.getbbox() is None:
        raise errors.BadRequest("mask has no white area to redraw")
    work = _fit(image, tile)
    feather = feather_mask(redraw, max(1.0, min(tile) / 64))
    context = blurred(work, min(tile) / 24)
    palette, key = make_palette(prompt), prompt_key(prompt)
    tiles = []
    for index in range(4):
        rng = random.Random(derive_seed("inpaint", key, seed, index))
        art = _tile(palette, key, seed, index, tile, "inpaint")
        tiles.append(inpaint_tile(work, context, feather, art, rng))
    return _grid(tiles)


def blend(images: list[Image.Image], aspect: Aspect, seed: int) -> Image.Image:
    """Blend 2..5 images (center-cropped to `aspect`) into four different convex mixes at
    ``tile_size(aspect)``: equal weights, seeded weights, a gradient sweep and a cloudy mix."""
    if not 2 <= len(images) <= 5:
        raise errors.BadRequest(f"blend needs 2 to 5 images, got {len(images)}")
    size = tile_size(aspect)
    fitted = [_fit(image, size) for image in images]
    rng = random.Random(derive_seed("blend", seed, len(images)))
    weights = [[rng.uniform(0.35, 1.0) for _ in fitted] for _ in range(3)]
    sweep = Image.linear_gradient("L")
    if rng.random() < 0.5:
        sweep = ImageChops.add(sweep, sweep.transpose(Image.Transpose.ROTATE_90), 2.0)
    sweep = sweep.transpose(rng.choice(list(Image.Transpose)[:4])).resize(size)
    return _grid([
        convex_mix(fitted, [1.0] * len(fitted)),
        convex_mix(fitted, weights[0]),
        convex_mix(fitted, weights[1], sweep, 0.45),
        convex_mix(fitted, weights[2], noise_mask(size, rng, (3, 3), 2), 0.5),
    ])


# ----------------------------------------------------------------------------- describe


def describe(image: Image.Image) -> list[str]:
    """Four different prompts naming what the image shows: dominant colours, brightness,
    contrast, warmth, level of detail and orientation, each ending with ``--ar W:H``."""
    rgb = image.convert("RGB")
    k = 96 / max(rgb.size)
    thumb = rgb.resize((max(1, round(rgb.width * k)), max(1, round(rgb.height * k))),
                       Image.Resampling.BOX) if k < 1 else rgb
    names = dominant_colour_names(thumb)
    traits = image_traits(thumb)
    a, b = aspect_of(rgb.size)
    orientation = "square" if a == b else "wide landscape" if a > b else "tall portrait"
    colours = f"{names[0]} and {names[1]}" if len(names) > 1 else f"{names[0]} tones"
    main = names[0]
    prompts = [
        f"a {traits['style']} {orientation} composition in {colours}, {traits['lighting']} light, "
        f"{traits['contrast']}, {traits['detail']}",
        f"{traits['mood']} {orientation} scene dominated by {main}, {traits['warmth']} palette, "
        f"{traits['saturation']} colors",
        f"{traits['detail']} {main} artwork with {traits['light']} {traits['warmth']} tones and "
        f"{traits['contrast']}, {orientation} format",
        f"photograph of a {traits['warmth']}, {traits['light']} {orientation} view, "
        f"{' and '.join(names[:3])} color scheme, {traits['saturation']} colors",
    ]
    return [f"{' '.join(text.split())} --ar {a}:{b}" for text in prompts]
