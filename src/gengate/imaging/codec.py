"""Images in and out: decoding what users and upstreams send (bytes or base64, with
limits and clear errors) and encoding PNGs the same way every time. Every product's routes,
renderers and fake upstreams use these; Midjourney's image operations
(:mod:`gengate.products.midjourney.imaging`) build on them.

An image that cannot be used raises :class:`gengate.errors.BadRequest` with a message
naming the caller's label.
"""

from __future__ import annotations

import binascii
import io
from functools import lru_cache

from PIL import Image, ImageOps

from gengate import errors

__all__ = ["PNG_COMPRESS_LEVEL", "decode_base64_image", "decode_image", "encode_png", "flatten"]

PNG_COMPRESS_LEVEL = 1
_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
#: the modes a decoded image comes out in: RGB pictures, L masks
_MODES = frozenset({"RGB", "L"})


@lru_cache(maxsize=1)
def _open_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in _FORMATS if name in Image.OPEN)


def decode_image(data: bytes, label: str, *, max_pixels: int = 40_000_000,
                 mode: str = "RGB", shrink_to: int | None = None) -> Image.Image:
    """Decode image bytes (PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF) into a loaded image.

    `mode` is ``"RGB"`` (transparency flattened onto white) or ``"L"`` for masks (transparency
    counts as black). EXIF orientation is applied. Raises ``BadRequest("<label> is not a valid
    image")`` for anything Pillow rejects and ``BadRequest("<label> is too large")`` above
    `max_pixels` (checked before the pixels are decoded). With `shrink_to`, an image whose
    longer side is larger is reduced by a whole factor until it is not (a box filter; the
    full-size pixels are let go at once).
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be 'RGB' or 'L', not {mode!r}")
    try:
        image = Image.open(io.BytesIO(data), formats=_open_formats())
    except Image.DecompressionBombError as exc:
        raise errors.BadRequest(f"{label} is too large") from exc
    except Exception as exc:
        raise errors.BadRequest(f"{label} is not a valid image") from exc
    if image.width * image.height > max_pixels:
        raise errors.BadRequest(f"{label} is too large")
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        decoded = flatten(image, mode)
    except Exception as exc:
        raise errors.BadRequest(f"{label} is not a valid image") from exc
    if shrink_to is not None and max(decoded.size) > shrink_to:
        decoded = decoded.reduce(-(-max(decoded.size) // shrink_to))
    return decoded


def flatten(image: Image.Image, mode: str) -> Image.Image:
    """Convert to RGB or L, compositing transparency onto white (RGB) or black (L)."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        background = (255, 255, 255, 255) if mode == "RGB" else (0, 0, 0, 255)
        image = Image.alpha_composite(Image.new("RGBA", image.size, background),
                                      image.convert("RGBA"))
    return image if image.mode == mode else image.convert(mode)


def decode_base64_image(value: str, label: str, *, require_prefix: bool | None = None,
                        max_pixels: int = 40_000_000, mode: str = "RGB",
                        max_bytes: int | None = None) -> Image.Image:
    """Decode ``data:image/<fmt>;base64,<payload>`` or bare base64 into an image.

    `require_prefix`: ``None`` accepts both forms, ``True`` only data URLs, ``False`` only bare
    base64. Whitespace, missing padding and the URL-safe alphabet are tolerated. Raises
    ``BadRequest("<label> is not valid base64")`` for malformed payloads, then whatever
    :func:`decode_image` raises. Past `max_bytes` (decoded; checked on the text's length
    before decoding) it raises ``BadRequest("<label> is too large: ...")``.
    """
    if not isinstance(value, str) or not value.strip():
        raise errors.BadRequest(f"{label} is empty")
    text = value.strip()
    has_prefix = text[:5].lower() == "data:"
    if require_prefix and not has_prefix:
        raise errors.BadRequest(f"{label} must be a data URL: data:image/<format>;base64,<data>")
    if require_prefix is False and has_prefix:
        raise errors.BadRequest(f"{label} must be bare base64, without a data: prefix")
    if has_prefix:
        header, sep, text = text.partition(",")
        media = header[5:].strip().lower()
        if not sep or not media.endswith(";base64"):
            raise errors.BadRequest(
                f"{label} is not valid base64: expected data:image/<format>;base64,<data>")
        if not media.startswith("image/"):
            raise errors.BadRequest(f"{label} is not an image data URL")
    if max_bytes is not None and len(text) > (max_bytes + 2) // 3 * 4 * 77 // 76 + 64:
        raise errors.BadRequest(f"{label} is too large: at most {max_bytes} bytes")
    data = _b64decode(text, label)
    if max_bytes is not None and len(data) > max_bytes:
        raise errors.BadRequest(f"{label} is too large: at most {max_bytes} bytes")
    return decode_image(data, label, max_pixels=max_pixels, mode=mode)


def _b64decode(text: str, label: str) -> bytes:
    compact = "".join(text.split())
    if "-" in compact or "_" in compact:
        compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        # straight from the (ASCII) text, without an encoded copy of it
        data = binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.BadRequest(f"{label} is not valid base64") from exc
    if not data:
        raise errors.BadRequest(f"{label} is empty")
    return data


def encode_png(image: Image.Image) -> bytes:
    """Encode as PNG without metadata (no text, time, ICC or transparency chunks): same pixels,
    same bytes. Modes PNG cannot hold are converted to RGB."""
    if image.mode not in _PNG_MODES:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    info, image.info = image.info, {}  # left out of the file, without copying the pixels
    try:
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    finally:
        image.info = info
    return buffer.getvalue()
