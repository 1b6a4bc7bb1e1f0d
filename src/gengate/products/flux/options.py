"""A Flux job's options, the modes and sizes the contract lists, and how a request's
``size`` / ``aspect_ratio`` become the picture's pixel size."""

from __future__ import annotations

from dataclasses import dataclass

from gengate.errors import BadRequest
from gengate.imaging.picture import fit_area, parse_ratio
from gengate.products.base import Options

__all__ = ["ASPECT_RATIOS", "EDIT_MODES", "MODES", "SIZES", "FluxOptions", "pixel_size"]

#: every mode TTAPI lists (flux1-schnell only on its older page)
MODES = ("flux1-dev", "flux1-pro", "flux-kontext-pro", "flux-kontext-max", "flux-2-pro",
         "flux-2-flex", "flux-2-max", "flux-2-klein-4b", "flux-2-klein-9b", "flux1-schnell")
#: the modes that take input images (Kontext and FLUX.2), with how many each takes
EDIT_MODES = {"flux-kontext-pro": 4, "flux-kontext-max": 4, "flux-2-pro": 8,
              "flux-2-flex": 8, "flux-2-max": 8, "flux-2-klein-4b": 4, "flux-2-klein-9b": 4}
SIZES = ("1024x1024", "1024x1792", "1792x1024")
ASPECT_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
#: an aspect ratio is made at about one megapixel, sides in multiples of 32
AREA = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FluxOptions(Options):
    """A Flux job's own options (stored in the job's params)."""

    model: str = "flux1-dev"
    #: the picture's pixel size, resolved at submit from size / aspect_ratio / the input
    width: int = 1024
    height: int = 1024
    #: as the client sent them (shown in fetch; the TTAPI relay forwards them)
    size: str | None = None
    aspect_ratio: str | None = None
    #: which front took it: "ttapi" (/flux/generate, /flux/edits) or "bfl" (/bfl/v1/...)
    front: str = "ttapi"
    seed: int | None = None
    output_format: str | None = None
    prompt_upsampling: bool | None = None
    safety_tolerance: int | None = None
    #: BFL-format input images given as URLs (downloaded when the job runs)
    image_urls: tuple[str, ...] | list[str] = ()


def pixel_size(size: str | None, aspect_ratio: str | None,
               first_input: tuple[int, int] | None = None) -> tuple[int, int]:
    """``size`` when given (one of :data:`SIZES`), else ``aspect_ratio`` at about one
    megapixel, else the first input image's shape (edits), else 1024x1024."""
    if size is not None:
        if size not in SIZES:
            raise BadRequest(f"size: must be one of {', '.join(SIZES)}")
        width_text, _, height_text = size.partition("x")
        return int(width_text), int(height_text)
    if aspect_ratio is not None:
        if aspect_ratio not in ASPECT_RATIOS:
            raise BadRequest(f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
        ratio = parse_ratio(aspect_ratio)
        assert ratio is not None
        return fit_area(ratio, AREA, 32)
    if first_input is not None:
        width, height = first_input
        shape = max(9 / 21, min(21 / 9, width / height))
        return fit_area((round(shape * 1000), 1000), AREA, 32)
    return 1024, 1024
