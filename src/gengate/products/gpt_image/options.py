"""A GPT image job's options, the models TTAPI lists, and the picture's pixel size:
``aspect_ratio`` for gpt-image-2, ``size`` for gpt-image-2-plus (corrected into bounds, never
refused), 1024x1024 otherwise."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gengate.errors import BadRequest
from gengate.imaging.picture import fit_area, parse_ratio
from gengate.products.base import Options

__all__ = ["ASPECT_RATIOS", "MODELS", "GptImageOptions", "corrected_size", "pixel_size"]

MODELS = ("gpt-4o-image", "gpt-image-1", "gpt-image-1.5", "gpt-image-2", "gpt-image-2-plus")
DEFAULT_MODEL = "gpt-image-2"
#: gpt-image-2 only
ASPECT_RATIOS = ("1:1", "3:4", "4:3", "16:9", "9:16")
#: gpt-image-2-plus: TTAPI's bounds on ``size``
MIN_PIXELS, MAX_PIXELS, MAX_SIDE, MAX_RATIO, MULTIPLE = 655_360, 8_294_400, 3840, 3.0, 16
_SIZE = re.compile(r"^\s*(\d{1,6})\s*[xX*×]\s*(\d{1,6})\s*$")


@dataclass(frozen=True, slots=True)
class GptImageOptions(Options):
    """A GPT image job's own options (stored in the job's params)."""

    model: str = DEFAULT_MODEL
    width: int = 1024
    height: int = 1024
    aspect_ratio: str | None = None
    #: the size as the client asked for it (gpt-image-2-plus), before correction
    size: str | None = None
    #: referImages, downloaded when the job runs
    image_urls: tuple[str, ...] | list[str] = ()


def pixel_size(model: str, aspect_ratio: str | None, size: str | None) -> tuple[int, int]:
    """The picture's size; 400 for a field the model does not take."""
    if aspect_ratio is not None and model != "gpt-image-2":
        raise BadRequest(f"aspect_ratio: only gpt-image-2 takes it, not {model}")
    if size is not None and model != "gpt-image-2-plus":
        raise BadRequest(f"size: only gpt-image-2-plus takes it, not {model}")
    if aspect_ratio is not None:
        ratio = parse_ratio(aspect_ratio)
        if aspect_ratio not in ASPECT_RATIOS or ratio is None:
            raise BadRequest(f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
        return fit_area(ratio, 1024 * 1024, MULTIPLE)
    if size is not None:
        match = _SIZE.match(size)
        if match is None or not int(match[1]) or not int(match[2]):
            raise BadRequest("size: must be WIDTHxHEIGHT, e.g. 2048x1152")
        return corrected_size(int(match[1]), int(match[2]))
    return 1024, 1024


def corrected_size(width: int, height: int) -> tuple[int, int]:
    """The nearest size within gpt-image-2-plus's bounds, keeping the shape as far as the
    ratio bound allows: ratio at most 3:1, area 655,360 to 8,294,400 pixels, longest side at
    most 3840, sides in multiples of 16."""
    ratio = min(MAX_RATIO, max(1 / MAX_RATIO, width / height))
    area = min(MAX_PIXELS, max(MIN_PIXELS, width * height))
    w = math.sqrt(area * ratio)
    h = w / ratio
    shrink = min(1.0, MAX_SIDE / max(w, h))
    w, h = w * shrink, h * shrink
    out_w = max(MULTIPLE, MULTIPLE * round(w / MULTIPLE))
    out_h = max(MULTIPLE, MULTIPLE * round(h / MULTIPLE))
    out_w, out_h = min(out_w, MAX_SIDE), min(out_h, MAX_SIDE)
    while max(out_w, out_h) > MAX_RATIO * min(out_w, out_h):
        if out_w < out_h:
            out_w += MULTIPLE
        else:
            out_h += MULTIPLE
    while out_w * out_h > MAX_PIXELS:
        if out_w >= out_h:
            out_w -= MULTIPLE
        else:
            out_h -= MULTIPLE
    while out_w * out_h < MIN_PIXELS:
        if out_w <= out_h:
            out_w += MULTIPLE
        else:
            out_h += MULTIPLE
    return out_w, out_h
