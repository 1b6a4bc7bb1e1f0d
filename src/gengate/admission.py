"""Admission of jobs, group-committed: every submit that arrives in one turn of the event
loop is admitted in one transaction. Each job's checks stay exact (they run per job, in
order, under the users' row locks); only the cost of the transaction is shared."""

from __future__ import annotations

from collections.abc import Callable

from gengate.batching import GroupCommit
from gengate.clock import Clock
from gengate.errors import GengateError
from gengate.jobs import Job
from gengate.store import Admission, Store

__all__ = ["Admitter"]


class Admitter:
    def __init__(self, store: Store, clock: Clock, on_admitted: Callable[[], None]):
        self._store = store
        self._clock = clock
        self._on_admitted = on_admitted
        self._group: GroupCommit[Admission, Job] = GroupCommit(self._commit, self._after)

    async def admit(self, admission: Admission) -> Job:
        """The admitted job (or the earlier one with the same idempotency key)."""
        return await self._group.submit(admission)

    async def _commit(self, items: list[Admission]) -> list[Job | GengateError]:
        return await self._store.admit(items, self._clock.now())

    def _after(self, results: list[Job | GengateError]) -> None:
        if any(isinstance(r, Job) for r in results):
            self._on_admitted()
