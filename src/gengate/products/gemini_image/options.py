"""A Gemini image job's options, the models TTAPI lists, and the picture's pixel size.

Models, ``aspect_ratio`` and ``image_size`` as TTAPI's Gemini page lists them
(``reference/products.md`` 3.5). Pixel sizes follow Google's image-generation guide
(ai.google.dev/gemini-api/docs/image-generation): ``1K`` is about 1024 x 1024 pixels at the
ratio (16:9 -> 1344 x 768), ``2K`` and ``4K`` twice and four times the sides; gengate
computes them as that area at the ratio, sides multiples of 64.
"""

from __future__ import annotations

from dataclasses import dataclass

from gengate.errors import BadRequest
from gengate.imaging.picture import fit_area, parse_ratio
from gengate.products.base import Options

__all__ = ["ASPECT_RATIOS", "DEFAULT_MODEL", "IMAGE_SIZES", "MODELS", "GeminiImageOptions",
           "pixel_size"]

MODELS = ("gemini-2.5-flash-image-preview", "gemini-2.5-flash-image",
          "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview")
#: the CN page's default (the EN page's is gemini-2.5-flash-image-preview)
DEFAULT_MODEL = "gemini-3-pro-image-preview"
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
#: gemini-3.1-flash-image-preview only
EXTREME_RATIOS = ("1:4", "4:1", "1:8", "8:1")
#: image_size -> side of the square of the same area
IMAGE_SIZES = {"1K": 1024, "2K": 2048, "4K": 4096}


@dataclass(frozen=True, slots=True)
class GeminiImageOptions(Options):
    """A Gemini image job's own options (stored in the job's params)."""

    model: str = DEFAULT_MODEL
    aspect_ratio: str = "1:1"
    image_size: str = "1K"
    width: int = 1024
    height: int = 1024
    #: refer_images given as URLs, downloaded when the job runs (base64 ones are inputs)
    image_urls: tuple[str, ...] | list[str] = ()
    #: refer_images as the client sent them, echoed in the answer (base64 ones elided)
    refer_images: tuple[str, ...] | list[str] = ()
    google_search: bool = False
    image_search: bool = False
    thinking_level: str | None = None
    #: the route answered at once (sync_return=false): no request waits on it
    sync_return: bool = True


def pixel_size(model: str, aspect_ratio: str | None, image_size: str | None
               ) -> tuple[str, str, int, int]:
    """(aspect ratio, image size, width, height); 400 for what the model does not take."""
    ratio_text = aspect_ratio or "1:1"
    size_text = image_size or "1K"
    gemini3 = not model.startswith("gemini-2.5")
    if ratio_text in EXTREME_RATIOS and model != "gemini-3.1-flash-image-preview":
        raise BadRequest(f"aspect_ratio: {ratio_text} is only for "
                         "gemini-3.1-flash-image-preview")
    if ratio_text not in ASPECT_RATIOS + EXTREME_RATIOS:
        raise BadRequest(f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)} "
                         f"({', '.join(EXTREME_RATIOS)} for gemini-3.1-flash-image-preview)")
    if ratio_text != "1:1" and not gemini3:
        raise BadRequest(f"aspect_ratio: only gemini-3 models take it, not {model}")
    if size_text not in IMAGE_SIZES:
        raise BadRequest("image_size: must be 1K, 2K or 4K (uppercase K)")
    if size_text != "1K" and not gemini3:
        raise BadRequest(f"image_size: {model} makes 1K pictures only")
    ratio = parse_ratio(ratio_text)
    assert ratio is not None
    side = IMAGE_SIZES[size_text]
    width, height = fit_area(ratio, side * side, 64)
    return ratio_text, size_text, width, height
