"""Group commit of admissions: every submit that arrives in one turn of the event loop is
admitted in one transaction. Each job's checks stay exact (they run per job, in order, under
the users' row locks); only the cost of the transaction is shared."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gengate.clock import Clock
from gengate.errors import GengateError
from gengate.jobs import Job
from gengate.store import Admission, Store

__all__ = ["Admitter"]

#: the most admissions committed in one transaction
BATCH = 256


class Admitter:
    def __init__(self, store: Store, clock: Clock, on_admitted: Callable[[], None]):
        self._store = store
        self._clock = clock
        self._on_admitted = on_admitted
        self._pending: list[tuple[Admission, asyncio.Future[Job | GengateError]]] = []
        self._scheduled = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(self, admission: Admission) -> Job:
        """The admitted job (or the earlier one with the same idempotency key)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Job | GengateError] = loop.create_future()
        self._pending.append((admission, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start_drain)
        result = await future
        if isinstance(result, GengateError):
            raise result
        return result

    def _start_drain(self) -> None:
        task = asyncio.ensure_future(self._drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        async with self._lock:
            self._scheduled = False
            admitted = False
            while self._pending:
                batch = self._pending[:BATCH]
                del self._pending[:BATCH]
                admitted |= await self._commit(batch)
            if admitted:
                self._on_admitted()

    async def _commit(
        self, batch: list[tuple[Admission, asyncio.Future[Job | GengateError]]]
    ) -> bool:
        try:
            results = await self._store.admit([a for a, _ in batch], self._clock.now())
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return False
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        return any(isinstance(r, Job) for r in results)
