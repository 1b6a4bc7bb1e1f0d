"""Group commit: every item submitted in one turn of the event loop goes to the database in
one transaction. Each item is still decided on its own, in order, inside that transaction;
only the cost of the transaction (and of the round trips) is shared."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from gengate.errors import GengateError

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")

#: the most items committed in one transaction
BATCH = 256


class GroupCommit(Generic[T, R]):
    """``await group.submit(item)`` -> the item's result, or its error raised.

    ``commit(items)`` runs one transaction and returns one result per item, in order; a
    :class:`GengateError` in that list is that item's refusal (the others still commit).
    ``after(results)`` runs once per committed batch.
    """

    def __init__(self, commit: Callable[[list[T]], Awaitable[list[R | GengateError]]],
                 after: Callable[[list[R | GengateError]], None] | None = None):
        self._commit = commit
        self._after = after
        self._pending: list[tuple[T, asyncio.Future[R | GengateError]]] = []
        self._scheduled = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R | GengateError] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start_drain)
        result = await future
        if isinstance(result, GengateError):
            raise result
        return result

    async def drained(self) -> None:
        """Wait until the batches already taken have committed (or failed): nothing may
        still be writing when the store closes."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start_drain(self) -> None:
        task = asyncio.ensure_future(self._drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        # one transaction at a time; what arrives meanwhile forms the next batch
        async with self._lock:
            self._scheduled = False
            while self._pending:
                batch = self._pending[:BATCH]
                del self._pending[:BATCH]
                await self._run(batch)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R | GengateError]]]) -> None:
        try:
            results = await self._commit([item for item, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        if self._after is not None:
            self._after(results)
