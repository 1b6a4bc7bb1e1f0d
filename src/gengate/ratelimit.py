"""Request rate limits: per API key (per second and per minute), and per client address for
requests that carry no valid key.

Counting is a sliding-window counter (the current fixed window's count plus the previous
window's, weighted by how much of it still overlaps the sliding window): in this process,
with :class:`LocalCounter`, a dictionary and two integers per key, on the embedded default;
in Redis, with the ``limits`` library (one atomic script per check), when
``GENGATE_REDIS_URL`` is set, so that every API node counts against the same budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from gengate.errors import RateLimited

__all__ = ["Limits", "LocalCounter", "RateLimiter"]


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


class LocalCounter:
    """In-process sliding-window counters: per (window, key), the start of the current
    fixed window, its count and the previous window's count. Same arithmetic as the
    ``limits`` library's sliding-window counter, without its storage layer: one
    dictionary lookup per check, on the request path of every call."""

    __slots__ = ("_windows", "_clock")

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._windows: dict[tuple[int, str], list[float]] = {}
        self._clock = clock

    def hit(self, amount: int, seconds: int, key: str) -> float:
        """Count one request if the window allows it: 0.0; else the seconds to wait."""
        now = self._clock()
        slot = self._windows.get((seconds, key))
        start = now - now % seconds
        if slot is None:
            if len(self._windows) > 200_000:
                self._windows.clear()
            slot = self._windows[(seconds, key)] = [start, 0.0, 0.0]
        elif slot[0] != start:
            # the previous window is the current one only if it ended right now
            slot[2] = slot[1] if start - slot[0] == seconds else 0.0
            slot[0], slot[1] = start, 0.0
        weight = 1.0 - (now - start) / seconds
        if slot[2] * weight + slot[1] + 1 > amount:
            return max(1.0, start + seconds - now)
        slot[1] += 1
        return 0.0


class RateLimiter:
    def __init__(self, redis_url: str | None, default: Limits, per_ip_second: int,
                 admin_failures_per_minute: int = 0):
        self.shared = bool(redis_url)
        self._storage = _storage(redis_url)
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._local = None if redis_url else LocalCounter()
        self.default = default
        self._items: dict[tuple[str, int], RateLimitItem] = {}
        self._ip = RateLimitItemPerSecond(per_ip_second) if per_ip_second else None
        self._admin = (RateLimitItemPerMinute(admin_failures_per_minute)
                       if admin_failures_per_minute else None)
        # failed sign-ins are few: counted exactly over the last minute, so a guesser gets
        # no extra tries where two counting windows meet
        self._exact = MovingWindowRateLimiter(self._storage)

    def _item(self, unit: str, amount: int) -> RateLimitItem:
        item = self._items.get((unit, amount))
        if item is None:
            cls = RateLimitItemPerSecond if unit == "s" else RateLimitItemPerMinute
            item = self._items[(unit, amount)] = cls(amount)
        return item

    async def _hit(self, item: RateLimitItem, *identity: str) -> None:
        if self._local is not None:
            left = self._local.hit(item.amount, item.get_expiry(), ":".join(identity))
            if not left:
                return
            wait = math.ceil(left)
        elif await self._limiter.hit(item, *identity):
            return
        else:
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

    async def _refuse_admin(self, item: RateLimitItem, address: str) -> None:
        stats = await self._exact.get_window_stats(item, "admin", address)
        raise RateLimited(
            f"Too many requests: at most {item.amount} failed admin sign-ins per minute",
            headers={"Retry-After": str(max(1, math.ceil(stats.reset_time - time.time())))},
        )

    async def check_admin_address(self, address: str) -> None:
        """Refuse (429) an address that used up its failed admin sign-ins for now."""
        if self._admin is not None and not await self._exact.test(self._admin, "admin",
                                                                  address):
            await self._refuse_admin(self._admin, address)

    async def admin_failed(self, address: str) -> None:
        """Count one failed admin sign-in from ``address``; 429 once over the limit."""
        if self._admin is not None and not await self._exact.hit(self._admin, "admin",
                                                                 address):
            await self._refuse_admin(self._admin, address)

    async def signin_attempt(self, address: str, attempts: int, window: int) -> float | None:
        """Count one console sign-in attempt of ``address`` in the shared store (Redis):
        ``None``, or the seconds to wait once it made ``attempts`` in ``window`` seconds
        (counted exactly, over a moving window)."""
        item = RateLimitItemPerSecond(attempts, window)
        if await self._exact.hit(item, "signin", address):
            return None
        stats = await self._exact.get_window_stats(item, "signin", address)
        return max(0.0, stats.reset_time - time.time())

    async def ping(self) -> bool:
        return bool(await self._storage.check())
