"""A Midjourney job's typed options."""

from __future__ import annotations

from dataclasses import dataclass

from gengate.products.base import Options

__all__ = ["MidjourneyOptions"]


@dataclass(frozen=True, slots=True)
class MidjourneyOptions(Options):
    """A Midjourney job's own options (stored in its ``params``)."""

    version: str = "7"
    #: the grid's aspect ratio, width:height
    aspect: tuple[int, int] | list[int] = (1, 1)
    seed: int = 0
    #: describe: the image's URL (when no base64 was given)
    url: str | None = None
    #: seed: the parent job's seed
    parent_seed: int | None = None

    @property
    def ratio(self) -> tuple[int, int]:
        return int(self.aspect[0]), int(self.aspect[1])
