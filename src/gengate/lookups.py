"""Coalesced lookups: every read of a job by id that arrives in one turn of the event loop
is answered by one query. On PostgreSQL a fetch is one network round trip whatever the
load; without this, a busy node spends its connections on one-row queries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["BatchedLookup"]

K = TypeVar("K")
V = TypeVar("V")

#: the most keys asked in one query
BATCH = 500


class BatchedLookup(Generic[K, V]):
    """``await lookup.get(key)`` -> the value, or ``None`` when there is none."""

    def __init__(self, fetch_many: Callable[[list[K]], Awaitable[dict[K, V]]]):
        self._fetch_many = fetch_many
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, {}
        keys = list(waiting)
        for i in range(0, len(keys), BATCH):
            chunk = {k: waiting[k] for k in keys[i:i + BATCH]}
            task = asyncio.ensure_future(self._answer(chunk))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, waiting: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch_many(list(waiting))
        except Exception as exc:  # noqa: BLE001 - every waiter must hear of it
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, futures in waiting.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(key))
