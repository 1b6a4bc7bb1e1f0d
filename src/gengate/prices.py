"""Prices the operator changes while the gateway runs (the console's Prices page and
``/admin/prices``), kept in the database over the built-in table and the environment's
(``GENGATE_PRICES``, ``GENGATE_HOSTING_PRICES``).

Each process prices admissions from its in-memory :class:`~gengate.quota.PriceTable`; a
change is written with a bump of the version every process polls (the one key changes
use), so every node reloads the overrides within a second (docs/quota.md). A job keeps the
price it was admitted with."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gengate.clock import Clock
from gengate.errors import BadRequest, NotFound
from gengate.quota import MAX_QUOTA, PriceTable, from_milli, to_milli
from gengate.store import Store

__all__ = ["TIERS", "PriceService"]

#: ``main``: the operator's accounts; ``hosting``: jobs on a user's own accounts
TIERS = ("main", "hosting")
_PART = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9_.+-]{0,63})$")


class PriceService:
    def __init__(self, store: Store, clock: Clock, products: Iterable[str],
                 tables: Mapping[str, PriceTable], defaults: Mapping[str, Mapping[str, float]],
                 environment: Mapping[str, Mapping[str, float]]):
        self.store = store
        self.clock = clock
        self.products = sorted(products)
        self.tables = dict(tables)
        self.defaults = {t: dict(defaults.get(t, {})) for t in TIERS}
        self.environment = {t: dict(environment.get(t, {})) for t in TIERS}
        self._overrides: dict[str, dict[str, int]] = {t: {} for t in TIERS}

    async def load(self) -> None:
        """Read the operator's prices and apply them over the start-up tables."""
        overrides: dict[str, dict[str, int]] = {t: {} for t in TIERS}
        for tier, key, milli in await self.store.price_overrides():
            if tier in overrides:
                overrides[tier][key] = milli
        for tier in TIERS:
            merged = {**self.defaults[tier], **self.environment[tier],
                      **{k: from_milli(v) for k, v in overrides[tier].items()}}
            self.tables[tier].replace(merged)
        self._overrides = overrides

    def _check_tier(self, tier: str) -> str:
        if tier not in TIERS:
            raise BadRequest(f"tier: use {' or '.join(TIERS)}")
        return tier

    def _check_key(self, key: str) -> str:
        parts = key.split(":")
        if len(parts) != 3 or not all(_PART.match(p) for p in parts):
            raise BadRequest(f"key: `{key[:80]}` is not product:action:mode (each part "
                             "letters, digits, `_.+-`, or `*`)")
        if parts[0] not in self.products:
            raise BadRequest(f"key: unknown product `{parts[0][:40]}`; use "
                             f"{', '.join(self.products)}")
        return key

    def list(self) -> dict[str, list[dict[str, Any]]]:
        """Every entry of both tables with where it comes from (``built-in``,
        ``environment``, ``operator``) and the price it has without the operator's."""
        out: dict[str, list[dict[str, Any]]] = {}
        for tier in TIERS:
            base = {**self.defaults[tier], **self.environment[tier]}
            keys = sorted({*base, *self._overrides[tier]})
            rows = []
            for key in keys:
                if key in self._overrides[tier]:
                    price, source = from_milli(self._overrides[tier][key]), "operator"
                elif key in self.environment[tier]:
                    price, source = self.environment[tier][key], "environment"
                else:
                    price, source = self.defaults[tier][key], "built-in"
                rows.append({"key": key, "price": price, "source": source,
                             "base": base.get(key)})
            out[tier] = rows
        return out

    async def set(self, tier: str, key: str, price: float) -> dict[str, Any]:
        """Set (or replace) the operator's price of ``key``; every node uses it for the
        jobs it admits after the change."""
        self._check_tier(tier)
        self._check_key(key)
        if not math.isfinite(price) or price < 0 or price > MAX_QUOTA:
            raise BadRequest(f"price: must be a number from 0 to {MAX_QUOTA}")
        milli = to_milli(price)
        await self.store.set_price(tier, key, milli, self.clock.now())
        await self.load()
        return {"tier": tier, "key": key, "price": from_milli(milli), "source": "operator"}

    async def remove(self, tier: str, key: str) -> None:
        """Drop the operator's price of ``key``: the environment's or built-in one applies
        again (or none, for a key only the operator had)."""
        self._check_tier(tier)
        if not await self.store.remove_price(tier, key):
            raise NotFound(f"key: the operator has no {tier} price `{key[:80]}`")
        await self.load()
