"""The Midjourney product object: options, prices, statuses and bodies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from gengate.jobs import Job, Mode
from gengate.products.base import FOUR_STATUSES, Options, Product, ProductRoute, StatusSet
from gengate.quota import DEFAULT_HOSTING_PRICES, DEFAULT_PRICES

__all__ = ["PRODUCT", "MidjourneyOptions", "MidjourneyProduct"]


@dataclass(frozen=True, slots=True)
class MidjourneyOptions(Options):
    """A Midjourney job's own options."""

    version: str = "7"
    #: the grid's aspect ratio, width:height
    aspect: tuple[int, int] | list[int] = (1, 1)
    seed: int = 0
    #: describe: the image's URL (when no base64 was given)
    url: str | None = None
    #: seed: the parent job's seed
    parent_seed: int | None = None


def _strip(table: dict[str, float]) -> dict[str, float]:
    return {k.partition(":")[2]: v for k, v in table.items() if k.startswith("midjourney:")}


class MidjourneyProduct(Product[MidjourneyOptions]):
    name = "midjourney"
    title = "Midjourney"
    options_type = MidjourneyOptions
    statuses: ClassVar[StatusSet] = FOUR_STATUSES
    default_prices = _strip(DEFAULT_PRICES)
    default_hosting_prices = _strip(DEFAULT_HOSTING_PRICES)
    lanes = (Mode.FAST, Mode.RELAX, Mode.TURBO)
    fetch_path = "/midjourney/v1/fetch"

    def routes(self) -> Sequence[ProductRoute]:
        return ()

    def fetch_body(self, job: Job) -> dict[str, Any]:
        from gengate.wire import fetch_body

        return fetch_body(job)


PRODUCT = MidjourneyProduct()
