"""Tests of the pure image layer behind the ``local`` provider."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import zlib
from pathlib import Path
from typing import cast

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from gengate import errors
from gengate.products.midjourney import imaging

PROMPT = "a cute kitten in a sunny meadow, golden hour"
RED, GREEN, BLUE, YELLOW = (220, 30, 30), (30, 200, 60), (30, 60, 220), (240, 220, 40)


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute per-channel difference of two same-size images."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def solid_grid(size: tuple[int, int] = (64, 48)) -> Image.Image:
    w, h = size
    grid = Image.new("RGB", (2 * w, 2 * h))
    for index, colour in enumerate((RED, GREEN, BLUE, YELLOW)):
        grid.paste(colour, ((index % 2) * w, (index // 2) * h, (index % 2 + 1) * w,
                            (index // 2 + 1) * h))
    return grid


def picture(size: tuple[int, int] = (512, 512), seed: int = 1) -> Image.Image:
    return imaging.render_single("mountain lake at sunset", seed, size)


# ------------------------------------------------------------------------------ geometry


@pytest.mark.parametrize("aspect", [(1, 1), (4, 5), (16, 9), (2, 3), (1, 14), (9, 16), (7, 4),
                                    (21, 9), (3, 2)])
def test_tile_size_area_ratio_and_multiples_of_8(aspect: tuple[int, int]) -> None:
    w, h = imaging.tile_size(aspect)
    assert w % 8 == 0 and h % 8 == 0
    assert min(w, h) >= 64
    assert 0.85 <= w * h / 512**2 <= 1.15
    assert abs((w / h) / (aspect[0] / aspect[1]) - 1) < 0.015


def test_tile_size_known_values_and_clamp() -> None:
    assert imaging.tile_size((1, 1)) == (512, 512)
    assert imaging.tile_size((2, 3)) == (416, 624)
    assert imaging.tile_size((4, 5)) == (448, 560)
    assert imaging.tile_size((1, 14)) == (136, 1904)
    assert imaging.tile_size((30, 1)) == imaging.tile_size((14, 1)) == (1904, 136)
    with pytest.raises(ValueError):
        imaging.tile_size((0, 1))


@pytest.mark.parametrize(("size", "aspect"), [
    ((1024, 1024), (1, 1)), ((400, 500), (4, 5)), ((1456, 816), (16, 9)), ((816, 1456), (9, 16)),
    ((816, 1232), (2, 3)), ((1344, 768), (7, 4)), ((1000, 1010), (1, 1)), ((1904, 136), (14, 1)),
    ((3000, 7), (429, 1)), ((640, 360), (16, 9)),
])
def test_aspect_of(size: tuple[int, int], aspect: tuple[int, int]) -> None:
    assert imaging.aspect_of(size) == aspect


def test_split_grid_order_is_tl_tr_bl_br() -> None:
    tiles = imaging.split_grid(solid_grid())
    assert [t.size for t in tiles] == [(64, 48)] * 4
    assert [t.getpixel((10, 10)) for t in tiles] == [RED, GREEN, BLUE, YELLOW]
    assert [t.getpixel((63, 47)) for t in tiles] == [RED, GREEN, BLUE, YELLOW]


@pytest.mark.parametrize(("index", "colour"), [(1, RED), (2, GREEN), (3, BLUE), (4, YELLOW)])
def test_upscale_quadrant_picks_the_right_quadrant(index: int,
                                                   colour: tuple[int, int, int]) -> None:
    out = imaging.upscale_quadrant(solid_grid(), index)
    assert out.size == (128, 96) and out.mode == "RGB"
    assert out.getpixel((64, 48)) == colour
    assert out.getpixel((0, 0)) == colour
    with pytest.raises(ValueError):
        imaging.upscale_quadrant(solid_grid(), 5)


# ---------------------------------------------------------------------------- generation


@pytest.mark.parametrize("aspect", [(1, 1), (4, 5), (16, 9), (2, 3), (1, 14)])
def test_render_grid_size_and_mode(aspect: tuple[int, int]) -> None:
    w, h = imaging.tile_size(aspect)
    grid = imaging.render_grid(PROMPT, 7, aspect)
    assert grid.size == (2 * w, 2 * h)
    assert grid.mode == "RGB"


def test_render_grid_is_deterministic_and_depends_on_seed_and_prompt() -> None:
    first = imaging.encode_png(imaging.render_grid(PROMPT, 42, (4, 5)))
    assert first == imaging.encode_png(imaging.render_grid(PROMPT, 42, (4, 5)))
    assert first != imaging.encode_png(imaging.render_grid(PROMPT, 43, (4, 5)))
    assert first != imaging.encode_png(imaging.render_grid(PROMPT + " with a fox", 42, (4, 5)))


# SHA-256 of the PNG below, recorded with the drawing engine before it was split into the
# imaging_* modules; any change to the pixels (or to encode_png) changes it.
#: SHA-256 of the pixels (not the PNG bytes, which a zlib upgrade may change)
GOLDEN_GRID_SHA256 = "1de6e2a67d4fed0fbdbbb68e375c6e632d14030ab845a780846f386e578bb676"


def test_render_grid_matches_the_golden_hash() -> None:
    pixels = imaging.render_grid(PROMPT, 42, (4, 5)).tobytes()
    assert hashlib.sha256(pixels).hexdigest() == GOLDEN_GRID_SHA256


def test_render_grid_tiles_differ_and_look_like_pictures() -> None:
    tiles = imaging.split_grid(imaging.render_grid(PROMPT, 42, (1, 1)))
    for a, b in itertools.combinations(tiles, 2):
        assert mean_diff(a, b) > 4
    for tile in tiles:
        gray = tile.convert("L")
        assert ImageStat.Stat(gray).stddev[0] > 12  # not blank
        shifted = gray.crop((1, 0, gray.width, gray.height))
        neighbours = ImageChops.difference(gray.crop((0, 0, gray.width - 1, gray.height)),
                                           shifted)
        assert ImageStat.Stat(neighbours).mean[0] < 6  # smooth shapes, not noise


def test_render_single_matches_first_tile_and_any_size() -> None:
    size = imaging.tile_size((2, 3))
    grid = imaging.render_grid("misty pine forest", 5, (2, 3))
    single = imaging.render_single("misty pine forest", 5, size)
    assert mean_diff(single, imaging.split_grid(grid)[0]) == 0
    for odd in [(37, 91), (1, 1), (300, 20)]:
        out = imaging.render_single("night city skyline", 3, odd)
        assert out.size == odd and out.mode == "RGB"


def test_colour_words_steer_the_palette() -> None:
    def warmth(prompt: str) -> float:
        r, _, b = ImageStat.Stat(imaging.render_grid(prompt, 11, (1, 1))).mean
        return r - b

    def brightness(prompt: str) -> float:
        return ImageStat.Stat(imaging.render_grid(prompt, 11, (1, 1)).convert("L")).mean[0]

    assert warmth("a red landscape with hills") > warmth("a blue landscape with hills") + 10
    assert warmth("desert at sunset") > warmth("ocean in winter")
    assert brightness("sunny day over a snowy valley") > brightness("starry night") + 40


# ------------------------------------------------------------------------------ upscale


def test_upscale_factors_and_cap() -> None:
    small = picture((300, 200))
    assert imaging.upscale(small, 2).size == (600, 400)
    assert imaging.upscale(small, 4).size == (1200, 800)
    assert imaging.upscale(Image.new("RGB", (1024, 1024)), 4).size == (4096, 4096)
    assert imaging.upscale(Image.new("RGB", (2000, 1000)), 4).size == (4096, 2048)
    assert imaging.upscale(Image.new("RGB", (5000, 100)), 2).size == (4096, 82)
    with pytest.raises(ValueError):
        imaging.upscale(small, 0)


def test_creative_upscale_adds_deterministic_detail() -> None:
    small = picture((160, 120))
    plain = imaging.upscale(small, 2)
    creative = imaging.upscale(small, 2, creative=True)
    assert creative.size == plain.size == (320, 240)
    assert 0.5 < mean_diff(plain, creative) < 12
    assert imaging.encode_png(creative) == imaging.encode_png(
        imaging.upscale(small, 2, creative=True))


# ------------------------------------------------------------------------------- actions


def test_zoom_out_keeps_the_original_in_the_centre() -> None:
    src = picture((512, 512))
    grid = imaging.zoom_out(src, 2, "mountain lake", 9, (512, 512))
    assert grid.size == (1024, 1024)
    expected = src.resize((256, 256), Image.Resampling.LANCZOS)
    tiles = imaging.split_grid(grid)
    for tile in tiles:
        assert mean_diff(tile.crop((128, 128, 384, 384)), expected) < 1.0
    borders = [t.crop((0, 0, 512, 100)) for t in tiles]
    assert mean_diff(borders[0], borders[1]) > 1  # different seeded fills


def test_zoom_out_1_5_with_non_square_tile() -> None:
    src = picture((400, 300))
    grid = imaging.zoom_out(src, 1.5, "a lake", 1, (400, 300))
    assert grid.size == (800, 600)
    tile = imaging.split_grid(grid)[3]
    inner = (267, 200)
    left, top = (400 - inner[0]) // 2, (300 - inner[1]) // 2
    centre = tile.crop((left + 5, top + 5, left + inner[0] - 5, top + inner[1] - 5))
    expected = src.resize(inner, Image.Resampling.LANCZOS).crop(
        (5, 5, inner[0] - 5, inner[1] - 5))
    assert mean_diff(centre, expected) < 3
    with pytest.raises(ValueError):
        imaging.zoom_out(src, 5, "a lake", 1, (400, 300))


@pytest.mark.parametrize(("direction", "tile", "kept"), [
    ("right", (624, 416), (0, 0, 416, 416)),
    ("left", (624, 416), (208, 0, 624, 416)),
    ("down", (416, 624), (0, 0, 416, 416)),
    ("up", (416, 624), (0, 208, 416, 624)),
])
def test_pan_extends_the_requested_side(direction: str, tile: tuple[int, int],
                                        kept: tuple[int, int, int, int]) -> None:
    src = picture((1024, 1024))
    grid = imaging.pan(src, direction, "mountain lake", 4)
    assert grid.size == (2 * tile[0], 2 * tile[1])
    assert 0.9 < grid.width * grid.height / 1024**2 < 1.1
    expected = src.resize((416, 416), Image.Resampling.LANCZOS)
    tiles = imaging.split_grid(grid)
    for t in tiles:
        assert t.size == tile
        assert mean_diff(t.crop(kept), expected) < 0.5


def test_pan_new_area_differs_from_original_and_bad_direction() -> None:
    src = picture((512, 512))
    tile = imaging.split_grid(imaging.pan(src, "right", "mountain lake", 4))[0]
    assert tile.size[0] > tile.size[1]
    new_area = tile.crop((tile.width - 100, 0, tile.width, tile.height))
    assert mean_diff(new_area, tile.crop((0, 0, 100, tile.height))) > 2
    with pytest.raises(ValueError):
        imaging.pan(src, "diagonal", "x", 1)


def test_make_square_outputs_square_tiles_with_original_centred() -> None:
    src = Image.new("RGB", (600, 400), BLUE)
    ImageDraw.Draw(src).rectangle((0, 250, 600, 400), fill=GREEN)
    grid = imaging.make_square(src, "a meadow", 2)
    assert grid.size == (1024, 1024)
    expected = src.resize((512, 341), Image.Resampling.LANCZOS)
    top = (512 - 341) // 2
    for tile in imaging.split_grid(grid):
        assert tile.size == (512, 512)
        assert mean_diff(tile.crop((0, top, 512, top + 341)), expected) < 0.5
    tall = imaging.make_square(Image.new("RGB", (100, 700), RED), "x", 1)
    assert tall.size == (1024, 1024)


def test_inpaint_keeps_black_and_changes_white() -> None:
    src = picture((256, 192), seed=3)
    mask = Image.new("L", src.size, 0)
    ImageDraw.Draw(mask).rectangle((128, 0, 255, 191), fill=200)  # >= 128 counts as white
    grid = imaging.inpaint(src, mask, "a forest", 8, src.size)
    assert grid.size == (512, 384)
    tiles = imaging.split_grid(grid)
    for tile in tiles:
        assert tile.crop((0, 0, 128, 192)).tobytes() == src.crop((0, 0, 128, 192)).tobytes()
        assert mean_diff(tile.crop((160, 20, 236, 172)), src.crop((160, 20, 236, 172))) > 10
    assert mean_diff(tiles[0].crop((160, 20, 236, 172)), tiles[1].crop((160, 20, 236, 172))) > 2


def test_inpaint_resizes_to_tile_and_validates_mask() -> None:
    src = picture((256, 256))
    mask = Image.new("RGB", src.size, (0, 0, 0))
    ImageDraw.Draw(mask).ellipse((64, 64, 192, 192), fill=(255, 255, 255))
    grid = imaging.inpaint(src, mask, "a forest", 1, (128, 128))
    assert grid.size == (256, 256)
    with pytest.raises(errors.BadRequest, match="same size"):
        imaging.inpaint(src, Image.new("L", (10, 10), 255), "x", 1, (256, 256))
    with pytest.raises(errors.BadRequest, match="no white area"):
        imaging.inpaint(src, Image.new("L", src.size, 127), "x", 1, (256, 256))


def test_blend_of_two_solids_lies_between_them() -> None:
    a, b = (200, 40, 40), (20, 60, 220)
    images = [Image.new("RGB", (300, 300), a), Image.new("RGB", (200, 500), b)]
    grid = imaging.blend(images, (1, 1), 5)
    assert grid.size == (1024, 1024)
    lows, highs = [min(x, y) for x, y in zip(a, b, strict=True)], [
        max(x, y) for x, y in zip(a, b, strict=True)]
    for band, low, high in zip(grid.split(), lows, highs, strict=True):
        darkest, lightest = cast(tuple[int, int], band.getextrema())
        assert low - 1 <= darkest and lightest <= high + 1
    tiles = imaging.split_grid(grid)
    assert len({t.tobytes() for t in tiles}) == 4
    assert grid.tobytes() == imaging.blend(images, (1, 1), 5).tobytes()


def test_blend_sizes_and_counts() -> None:
    images = [picture((300, 200), seed) for seed in range(5)]
    w, h = imaging.tile_size((16, 9))
    assert imaging.blend(images, (16, 9), 1).size == (2 * w, 2 * h)
    with pytest.raises(errors.BadRequest, match="2 to 5"):
        imaging.blend(images[:1], (1, 1), 1)
    with pytest.raises(errors.BadRequest, match="2 to 5"):
        imaging.blend(images + images[:1], (1, 1), 1)


def test_vary_grid_strength_and_determinism() -> None:
    src = picture((320, 240))
    subtle = imaging.vary_grid(src, "mountain lake", 3, 0.15, (320, 240))
    strong = imaging.vary_grid(src, "mountain lake", 3, 0.45, (320, 240))
    assert subtle.size == strong.size == (640, 480)
    subtle_tiles, strong_tiles = imaging.split_grid(subtle), imaging.split_grid(strong)
    d_subtle = sum(mean_diff(t, src) for t in subtle_tiles)
    d_strong = sum(mean_diff(t, src) for t in strong_tiles)
    assert 0 < d_subtle < d_strong
    assert len({t.tobytes() for t in strong_tiles}) == 4
    assert imaging.vary_grid(src, "mountain lake", 3, 0.45, (320, 240)).tobytes() == \
        strong.tobytes()


def test_variation_grid_varies_the_chosen_quadrant() -> None:
    parent = imaging.render_grid("ocean sunset with mountains", 2, (1, 1))
    quadrants = imaging.split_grid(parent)
    grid = imaging.variation_grid(parent, 3, "ocean sunset with mountains", 2)
    assert grid.size == parent.size
    for tile in imaging.split_grid(grid):
        others = [mean_diff(tile, q) for i, q in enumerate(quadrants) if i != 2]
        assert mean_diff(tile, quadrants[2]) < min(others)


# ------------------------------------------------------------------------------ describe


def test_describe_solid_red_image() -> None:
    prompts = imaging.describe(Image.new("RGB", (400, 500), (230, 20, 25)))
    assert len(prompts) == 4 and len(set(prompts)) == 4
    assert all(p.endswith(" --ar 4:5") for p in prompts)
    assert all("red" in p for p in prompts)
    assert imaging.describe(Image.new("RGB", (400, 500), (230, 20, 25))) == prompts


def test_describe_reflects_content() -> None:
    dark = imaging.describe(Image.new("RGB", (1456, 816), (15, 20, 60)))
    assert all(p.endswith("--ar 16:9") for p in dark)
    assert any("dark" in p for p in dark)
    assert any("navy" in p or "blue" in p for p in dark)
    busy = imaging.describe(Image.frombytes("RGB", (96, 96), bytes(range(256)) * 108))
    minimal = imaging.describe(Image.new("RGB", (96, 96), (250, 250, 250)))
    assert any("intricate" in p for p in busy)
    assert any("minimal" in p for p in minimal)
    assert any("bright" in p for p in minimal)


# ------------------------------------------------------------------------------- codecs


def test_decode_image_roundtrip_formats() -> None:
    src = picture((64, 48))
    for fmt in ("PNG", "JPEG", "WEBP", "BMP", "GIF"):
        out = imaging.decode_image(png_bytes(src, fmt), "image")
        assert out.size == (64, 48) and out.mode == "RGB"
    assert imaging.decode_image(png_bytes(src), "image").tobytes() == src.tobytes()


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_decode_image_rejects_garbage(data: bytes) -> None:
    with pytest.raises(errors.BadRequest, match=r"^imgBase64Array\[1\] is not a valid image$"):
        imaging.decode_image(data, "imgBase64Array[1]")


def test_decode_image_rejects_truncated_and_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    data = png_bytes(picture((64, 64)))
    with pytest.raises(errors.BadRequest, match="is not a valid image"):
        imaging.decode_image(data[: len(data) // 2], "image")
    with pytest.raises(errors.BadRequest, match="^image is too large$"):
        imaging.decode_image(data, "image", max_pixels=64 * 64 - 1)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(errors.BadRequest, match="^image is too large$"):
        imaging.decode_image(data, "image", max_pixels=10**9)


def test_decode_image_modes_and_transparency() -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 255, 255, 255))
    as_rgb = imaging.decode_image(png_bytes(rgba), "image")
    assert as_rgb.getpixel((5, 5)) == (255, 255, 255)  # transparent -> white
    as_mask = imaging.decode_image(png_bytes(rgba), "mask", mode="L")
    assert as_mask.mode == "L"
    assert as_mask.getpixel((5, 5)) == 0 and as_mask.getpixel((0, 0)) == 255
    with pytest.raises(ValueError):
        imaging.decode_image(png_bytes(rgba), "mask", mode="CMYK")


def test_decode_base64_image_forms() -> None:
    raw = png_bytes(picture((32, 32)))
    bare = base64.b64encode(raw).decode()
    url = "data:image/png;base64," + bare
    assert imaging.decode_base64_image(bare, "image").size == (32, 32)
    assert imaging.decode_base64_image(url, "image").size == (32, 32)
    assert imaging.decode_base64_image(bare.rstrip("="), "image").size == (32, 32)
    spaced = "\n".join(bare[i:i + 76] for i in range(0, len(bare), 76))
    assert imaging.decode_base64_image(spaced, "image").size == (32, 32)
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    assert imaging.decode_base64_image(urlsafe, "image").size == (32, 32)
    mask = imaging.decode_base64_image(url, "mask", mode="L")
    assert mask.mode == "L"


def test_decode_base64_image_errors() -> None:
    bare = base64.b64encode(png_bytes(picture((16, 16)))).decode()
    with pytest.raises(errors.BadRequest, match=r"^imgBase64Array\[0\] is not valid base64$"):
        imaging.decode_base64_image("@@@ not base64 !!!", "imgBase64Array[0]")
    with pytest.raises(errors.BadRequest, match="is not valid base64"):
        imaging.decode_base64_image("data:image/png," + bare, "image")
    with pytest.raises(errors.BadRequest, match="is not valid base64"):
        imaging.decode_base64_image("abcde", "image")
    with pytest.raises(errors.BadRequest, match="not an image data URL"):
        imaging.decode_base64_image("data:text/plain;base64," + bare, "image")
    with pytest.raises(errors.BadRequest, match="must be a data URL"):
        imaging.decode_base64_image(bare, "image", require_prefix=True)
    with pytest.raises(errors.BadRequest, match="must be bare base64"):
        imaging.decode_base64_image("data:image/png;base64," + bare, "image",
                                    require_prefix=False)
    with pytest.raises(errors.BadRequest, match="is empty"):
        imaging.decode_base64_image("  ", "image")
    with pytest.raises(errors.BadRequest, match="is not a valid image"):
        imaging.decode_base64_image(base64.b64encode(b"hello world").decode(), "image")


def _chunk_types(png: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        types.append(png[pos + 4:pos + 8])
        pos += 12 + length
    return types


def test_encode_png_is_clean_and_deterministic(tmp_path: Path) -> None:
    image = picture((64, 64))
    image.info["icc_profile"] = b"fake profile"
    image.info["transparency"] = (0, 0, 0)
    png = imaging.encode_png(image)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert _chunk_types(png) == [b"IHDR", b"IDAT", b"IEND"] or set(_chunk_types(png)) == {
        b"IHDR", b"IDAT", b"IEND"}
    assert png == imaging.encode_png(picture((64, 64)))
    path = tmp_path / "out.png"
    path.write_bytes(png)
    with Image.open(path) as reopened:
        assert reopened.mode == "RGB"
        assert reopened.tobytes() == image.tobytes()
    assert zlib.crc32(imaging.encode_png(Image.new("CMYK", (4, 4)))) == zlib.crc32(
        imaging.encode_png(Image.new("CMYK", (4, 4))))
