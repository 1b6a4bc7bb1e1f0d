"""Managing API keys: create (the secret shown once), list, change limits, rotate, revoke,
and spend per key per day. Used by the admin API, the CLI and a user's own key routes."""

from __future__ import annotations

import builtins
import fnmatch
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from gengate.clock import Clock, timestamp
from gengate.errors import BadRequest
from gengate.keys import SHOWN, hash_key, new_key, parse_networks
from gengate.quota import from_milli, to_milli
from gengate.store import KeyRow, Store

__all__ = ["LLM_PRODUCT", "KeyService", "key_view"]

#: the product name of the LLM relay (``/v1/messages``, ``/v1/chat/completions``, ...)
LLM_PRODUCT = "llm"

#: wire field -> column
_FIELDS = {
    "name": "name", "products": "products", "models": "models", "cidrs": "cidrs",
    "expiresAt": "expires_at", "ratePerSecond": "rate_per_second",
    "ratePerMinute": "rate_per_minute", "capDay": "cap_day", "capMonth": "cap_month",
    "capTotal": "cap_total",
}


def key_view(key: KeyRow, now: float) -> dict[str, Any]:
    """A key as listings show it: never the secret or its hash."""
    status = "active"
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and now >= key.expires_at:
        status = "expired"
    return {
        "keyId": key.id, "prefix": key.prefix, "name": key.name, "status": status,
        "createdAt": timestamp(key.created_at), "revokedAt": timestamp(key.revoked_at),
        "expiresAt": timestamp(key.expires_at), "products": key.products,
        "models": key.models, "cidrs": key.cidrs,
        "capDay": _quota(key.caps.get("day")), "capMonth": _quota(key.caps.get("month")),
        "capTotal": _quota(key.caps.get("total")),
        "spentDay": from_milli(key.spent.get("day", 0)),
        "spentMonth": from_milli(key.spent.get("month", 0)),
        "spentTotal": from_milli(key.spent.get("total", 0)),
        "ratePerSecond": key.rate_per_second, "ratePerMinute": key.rate_per_minute,
    }


def _quota(value: int | None) -> int | float | None:
    return None if value is None else from_milli(value)


class KeyService:
    def __init__(self, store: Store, clock: Clock, products: Iterable[str],
                 on_change: Callable[[], None] = lambda: None):
        self.store = store
        self.clock = clock
        self.products = sorted({*products, LLM_PRODUCT})
        #: this process drops its cached keys at once (others at their next poll)
        self._changed = on_change

    def limits(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Wire fields (set ones only) as column values, each checked: 400 naming the
        field that is wrong."""
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if name not in _FIELDS:
                continue
            column = _FIELDS[name]
            if value is None:
                if name == "name":
                    value = ""
                out[column] = value
                continue
            if name == "products":
                unknown = [p for p in value if p not in self.products]
                if unknown:
                    raise BadRequest(f"products: unknown product `{unknown[0]}`; known: "
                                     f"{', '.join(self.products)}")
                value = sorted(set(value))
            elif name == "models":
                if any(not isinstance(p, str) or not p or len(p) > 128 for p in value):
                    raise BadRequest("models: each pattern is 1 to 128 characters")
                value = [str(p) for p in value]
                for pattern in value:  # a pattern that fnmatch cannot compile is refused
                    fnmatch.translate(pattern)
            elif name == "cidrs":
                value = [str(n) for n in parse_networks(value, "cidrs")]
            elif name == "expiresAt":
                value = value.timestamp() if isinstance(value, datetime) else float(value)
            elif name.startswith("cap"):
                value = to_milli(value)
            out[column] = value
        return out

    async def create(self, user_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """A new key; the answer carries its secret (``apiKey``), shown this once."""
        limits = self.limits(fields)
        secret = new_key()
        now = self.clock.now()
        key = await self.store.create_key(user_id, hash_key(secret), secret[:SHOWN], now,
                                          limits)
        return {"userId": user_id, **key_view(key, now), "apiKey": secret}

    async def list(self, user_id: int) -> list[dict[str, Any]]:
        now = self.clock.now()
        return [key_view(k, now) for k in await self.store.list_keys(user_id, now)]

    async def get(self, user_id: int, key_id: int) -> dict[str, Any]:
        now = self.clock.now()
        return key_view(await self.store.get_key(user_id, key_id, now), now)

    async def update(self, user_id: int, key_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        key = await self.store.modify_key(user_id, key_id, self.limits(fields), now)
        self._changed()
        return key_view(key, now)

    async def rotate(self, user_id: int, key_id: int) -> dict[str, Any]:
        """A new secret for the key (same id, limits and usage); the old one stops."""
        secret = new_key()
        now = self.clock.now()
        key = await self.store.rotate_key(user_id, key_id, hash_key(secret), secret[:SHOWN],
                                          now)
        self._changed()
        return {"userId": user_id, **key_view(key, now), "apiKey": secret}

    async def revoke(self, user_id: int, key_id: int) -> None:
        await self.store.revoke_key(user_id, key_id, self.clock.now())
        self._changed()

    async def usage(self, user_id: int, days: int) -> builtins.list[dict[str, Any]]:
        """Spend (settled quota) and submissions per key per UTC day, newest first."""
        await self.store.get_user(user_id)
        now = self.clock.now()
        since = (now // 86400 - (days - 1)) * 86400
        return [{**row, "spent": from_milli(row["spent"])}
                for row in await self.store.key_spend(user_id, since)]
