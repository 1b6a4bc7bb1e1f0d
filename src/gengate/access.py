"""Who is calling: an API key resolved to its user and its limits, cached per process.

The hot path reads no database: a key is looked up once and kept. Every change to keys or
users' standing (revoke, rotate, new limits, a user deactivated) bumps one version number in
the database in the same transaction; each process polls that number (every
``GENGATE_KEY_POLL_INTERVAL``, 0.25 s by default) and, on PostgreSQL, also hears the
change at once by ``LISTEN``; either way it drops every cached key, so a revoked key stops
working on every node within a second. Expiry needs no message: it is compared with the
clock on each request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gengate.clock import Clock
from gengate.errors import Unauthorized
from gengate.keys import KeyPolicy, Network, client_address, hash_key, parse_networks
from gengate.ratelimit import Limits
from gengate.store import KeyRow, Store, User

__all__ = ["Access", "Principal"]

log = logging.getLogger("gengate.access")

#: a cached key is read again after this long even without a change (a backstop)
CACHE_SECONDS = 60.0
_MAX_CACHED = 100_000


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user, the key and its limits, and the request limits
    that apply (``None``: the deployment's defaults)."""

    user_id: int
    key: KeyPolicy
    limits: Limits | None
    #: what the rate limiter counts this caller's requests under (a hash prefix: unique
    #: even across deployments that share one Redis)
    rate_id: str

    @property
    def key_id(self) -> int:
        return self.key.key_id


def _principal(user: User, key: KeyRow, digest: str) -> Principal:
    policy = KeyPolicy(
        key_id=key.id, user_id=user.id, prefix=key.prefix,
        products=tuple(key.products) if key.products is not None else None,
        models=tuple(key.models) if key.models is not None else None,
        networks=parse_networks(key.cidrs, "cidrs") if key.cidrs is not None else None,
        expires_at=key.expires_at, caps=dict(key.caps),
        rate_per_second=key.rate_per_second, rate_per_minute=key.rate_per_minute,
    )
    per_second = key.rate_per_second if key.rate_per_second is not None else user.rate_per_second
    per_minute = key.rate_per_minute if key.rate_per_minute is not None else user.rate_per_minute
    limits = None
    if per_second is not None or per_minute is not None:
        limits = Limits(per_second, per_minute)
    return Principal(user.id, policy, limits, digest[:16])


class Access:
    def __init__(self, store: Store, clock: Clock, trusted_proxies: Sequence[Network] = (),
                 poll_interval: float = 0.25):
        self.store = store
        self.clock = clock
        self.trusted = tuple(trusted_proxies)
        self.poll_interval = poll_interval
        self._keys: dict[str, tuple[Principal, float]] = {}
        #: bumped by each invalidation; a lookup that raced one is not cached
        self._generation = 0
        self._version: int | None = None
        self._poller: asyncio.Task[None] | None = None
        #: called after another process changed the version (the operator's prices
        #: reload on it)
        self.listeners: list[Callable[[], Awaitable[None]]] = []

    # -- the hot path -----------------------------------------------------------------------
    async def principal(self, raw_key: str | None) -> Principal:
        """The caller of an API key; 401 if it is unknown, revoked or expired, or its user
        is deactivated."""
        if not raw_key:
            raise Unauthorized()
        digest = hash_key(raw_key)
        cached = self._keys.get(digest)
        mono = time.monotonic()
        if cached is not None and cached[1] > mono:
            principal = cached[0]
        else:
            generation = self._generation
            found = await self.store.key_by_hash(digest)
            if found is None or not found[0].active:
                self._keys.pop(digest, None)
                raise Unauthorized()
            principal = _principal(*found, digest)
            if generation == self._generation:
                if len(self._keys) >= _MAX_CACHED:
                    self._keys.clear()
                self._keys[digest] = (principal, mono + CACHE_SECONDS)
        if principal.key.expired(self.clock.now()):
            raise Unauthorized()
        return principal

    def address(self, scope: dict[str, Any]) -> str:
        """The client's address, ``X-Forwarded-For`` honoured only from a trusted proxy."""
        client = scope.get("client")
        peer = str(client[0]) if client else None
        if not self.trusted:
            return peer or "unknown"
        forwarded = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded = value.decode("latin-1") if forwarded is None else (
                    forwarded + "," + value.decode("latin-1"))
        return client_address(peer, forwarded, self.trusted)

    # -- invalidation -----------------------------------------------------------------------
    def invalidate(self) -> None:
        """Drop every cached key (a key or a user changed somewhere)."""
        self._generation += 1
        self._keys.clear()

    async def changed(self) -> None:
        """Something about keys changed outside the key rows (a user's standing or rate
        limits): tell every process, this one at once."""
        self._version = await self.store.keys_changed()
        self.invalidate()

    async def check_version(self) -> None:
        version = await self.store.key_version()
        if version != self._version:
            first = self._version is None
            if not first:
                log.info("event=keys_changed version=%s", version)
            self._version = version
            self.invalidate()
            if not first:
                for listener in self.listeners:
                    try:
                        await listener()
                    except Exception:
                        log.exception("event=version_listener_failed")

    def start(self) -> None:
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            try:
                await self.check_version()
            except Exception:
                # the database is away: forget what may have changed meanwhile, try again
                log.exception("event=key_version_failed")
                self.invalidate()
            await asyncio.sleep(self.poll_interval)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
