"""Request rate limits: per API key (per second and per minute), and per client address for
requests that carry no valid key.

Counting is the ``limits`` library's sliding-window counter: in this process on the
embedded default, or in Redis (one atomic script per check) when ``GENGATE_REDIS_URL`` is
set, so that every API node counts against the same budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from gengate.errors import RateLimited

__all__ = ["Limits", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests allowed per second and per minute; 0 means no limit, ``None`` the
    deployment's default."""

    per_second: int | None = 0
    per_minute: int | None = 0


def _storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    scheme, sep, rest = redis_url.partition("://")
    if not sep or scheme not in ("redis", "rediss"):
        raise ValueError("GENGATE_REDIS_URL must start with redis:// or rediss://")
    return RedisStorage(f"async+{scheme}://{rest}")


class RateLimiter:
    def __init__(self, redis_url: str | None, default: Limits, per_ip_second: int,
                 admin_failures_per_minute: int = 0):
        self.shared = bool(redis_url)
        self._storage = _storage(redis_url)
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self.default = default
        self._items: dict[tuple[str, int], RateLimitItem] = {}
        self._ip = RateLimitItemPerSecond(per_ip_second) if per_ip_second else None
        self._admin = (RateLimitItemPerMinute(admin_failures_per_minute)
                       if admin_failures_per_minute else None)

    def _item(self, unit: str, amount: int) -> RateLimitItem:
        item = self._items.get((unit, amount))
        if item is None:
            cls = RateLimitItemPerSecond if unit == "s" else RateLimitItemPerMinute
            item = self._items[(unit, amount)] = cls(amount)
        return item

    async def _hit(self, item: RateLimitItem, *identity: str) -> None:
        if await self._limiter.hit(item, *identity):
            return
        stats = await self._limiter.get_window_stats(item, *identity)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Too many requests: at most {item.amount} per {item.GRANULARITY.name}",
            headers={"Retry-After": str(wait)},
        )

    async def check_key(self, key_id: str, limits: Limits | None) -> None:
        """Count one request of an API key; 429 with ``Retry-After`` over its limits."""
        limits = limits or self.default
        per_second = self.default.per_second if limits.per_second is None else limits.per_second
        per_minute = self.default.per_minute if limits.per_minute is None else limits.per_minute
        if per_second:
            await self._hit(self._item("s", per_second), "key", key_id)
        if per_minute:
            await self._hit(self._item("m", per_minute), "key", key_id)

    async def check_address(self, address: str) -> None:
        """Count one request without a valid key from ``address``."""
        if self._ip is not None:
            await self._hit(self._ip, "ip", address)

    async def check_admin_address(self, address: str) -> None:
        """Refuse (429) an address that used up its failed admin sign-ins for now."""
        if self._admin is not None and not await self._limiter.test(self._admin, "admin", address):
            await self._hit(self._admin, "admin", address)

    async def admin_failed(self, address: str) -> None:
        """Count one failed admin sign-in from ``address``; 429 once over the limit."""
        if self._admin is not None:
            await self._hit(self._admin, "admin", address)

    async def ping(self) -> bool:
        return bool(await self._storage.check())
