"""A Sora job's typed options and the rules that turn a request into them."""

from __future__ import annotations

from dataclasses import dataclass

from gengate.errors import BadRequest
from gengate.products.base import Options

__all__ = ["DURATIONS", "MODELS", "OPENAI_SECONDS", "OPENAI_SIZES", "SoraOptions",
           "resolution"]

MODELS = ("sora-2", "sora-2-pro")
#: TTAPI: 10 and 15 s on both models, 25 s only on sora-2-pro (and only at size small)
DURATIONS = {"sora-2": (10, 15), "sora-2-pro": (10, 15, 25)}
DEFAULT_DURATION = {"sora-2": 10, "sora-2-pro": 15}
#: OpenAI's video API: seconds and sizes per model (sora-2 only at 720p)
OPENAI_SECONDS = ("4", "8", "12")
OPENAI_SIZES = {"sora-2": ("720x1280", "1280x720"),
                "sora-2-pro": ("720x1280", "1280x720", "1024x1792", "1792x1024")}


@dataclass(frozen=True, slots=True)
class SoraOptions(Options):
    """A Sora job's own fields (stored in its ``params``)."""

    model: str = "sora-2"
    duration: int = 10
    orientation: str = "portrait"
    #: TTAPI's size (``small``/``large``, pro only); None when not given
    size: str | None = None
    width: int = 720
    height: int = 1280
    refer_images: tuple[str, ...] | list[str] = ()
    character_url: str | None = None
    character_timestamps: str | None = None
    private: bool = False
    seed: int = 0
    #: which front made it: ``ttapi`` (/sora/generations) or ``openai`` (/v1/videos)
    front: str = "ttapi"


def resolution(model: str, orientation: str, size: str | None) -> tuple[int, int]:
    """Width and height: sora-2 (and pro at ``small``) 720x1280, pro at ``large``
    1024x1792; landscape swaps them."""
    short, long = (1024, 1792) if model == "sora-2-pro" and size == "large" else (720, 1280)
    return (long, short) if orientation == "landscape" else (short, long)


def check_ttapi_rules(model: str, duration: int | None, size: str | None,
                      timestamps: str | None) -> int:
    """TTAPI's cross-field rules; the duration to use."""
    if size is not None and model != "sora-2-pro":
        raise BadRequest("size: only sora-2-pro takes a size")
    seconds = DEFAULT_DURATION[model] if duration is None else duration
    if seconds not in DURATIONS[model]:
        allowed = ", ".join(str(d) for d in DURATIONS[model])
        raise BadRequest(f"duration: {model} makes {allowed} second videos")
    if seconds == 25 and size == "large":
        raise BadRequest("duration: 25 second videos are only made at size small")
    if timestamps is not None:
        start, _, end = timestamps.partition(",")
        try:
            span = float(end) - float(start)
        except ValueError:
            raise BadRequest('character_timestamps: must be "start,end" in seconds') from None
        if float(start) < 0 or not 1 <= span <= 3:
            raise BadRequest("character_timestamps: the span must be 1 to 3 seconds")
    return seconds
