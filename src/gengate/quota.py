"""Prices and quota arithmetic. Pure.

Quota is what TTAPI bills in (1 USD = 100 quota). Amounts are kept as integers of
1/1000 quota ("milli") in the store so that sums are exact; the API shows plain numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from gengate.errors import BadRequest

__all__ = ["MAX_MILLI", "MAX_QUOTA", "LedgerKind", "PriceTable", "from_milli", "to_milli"]

MILLI = 1000
#: the most quota one balance (and one top-up) may hold: whole milli amounts up to this stay
#: exact integers in every database and in a JSON double
MAX_QUOTA = 10**12
MAX_MILLI = MAX_QUOTA * MILLI

class LedgerKind(enum.StrEnum):
    """Money movements; each happens at most once per job."""

    TOPUP = "topup"  #: admin added quota
    FREEZE = "freeze"  #: price held at submit
    SETTLE = "settle"  #: held price spent on SUCCESS
    REFUND = "refund"  #: held price returned on FAILED
    OVERAGE = "overage"  #: an LLM call's reported usage cost more than its hold


def to_milli(amount: float) -> int:
    return round(amount * MILLI)


def from_milli(milli: int) -> int | float:
    """A plain number for the wire: ``2`` rather than ``2.0`` when whole."""
    if milli % MILLI == 0:
        return milli // MILLI
    return milli / MILLI


class PriceTable:
    """Looks up the price of (product, action, variant), most specific entry first. The
    variant is a speed mode (Midjourney) or a model (Flux, GPT image); each product
    declares its default entries (``Product.default_prices``)."""

    def __init__(self, prices: Mapping[str, float]):
        self._prices: dict[tuple[str, str, str], int] = {}
        self.replace(prices)

    def replace(self, prices: Mapping[str, float]) -> None:
        """Every entry at once (the operator changed a price): admissions after it use the
        new table, none sees half of it."""
        table: dict[tuple[str, str, str], int] = {}
        for key, value in prices.items():
            parts = key.split(":")
            if len(parts) != 3 or value < 0:
                raise BadRequest(f"prices: bad entry {key!r}={value!r}")
            table[(parts[0], parts[1], parts[2])] = to_milli(value)
        self._prices = table

    def price_milli(self, product: str, action: str, mode: str) -> int:
        for key in (
            (product, action, mode),
            (product, action, "*"),
            (product, "*", mode),
            (product, "*", "*"),
        ):
            if key in self._prices:
                return self._prices[key]
        raise BadRequest(f"no price configured for {product} {action} in {mode} mode")
