"""Waiting for a job to end, for the synchronous routes (Gemini image, OpenAI images).

A synchronous request is a job like any other; the API node only holds the HTTP request
open until the job ends. It waits on that job's own completion event, kept here in memory
(an :class:`asyncio.Future` per waiting job, nothing per request besides it):

- the node whose store ends a job (its worker, a cancel, a deadline) calls
  :meth:`JobEnds.ended` after the commit (the store's ``ended`` hook);
- on PostgreSQL, the transaction that ends a job a synchronous route waits on also sends
  ``NOTIFY gengate_ended, '<jobId>'`` (:data:`gengate.store.channels.ENDED_CHANNEL`), which
  every node's listener hands to :meth:`JobEnds.ended`: the worker may run in another
  process or on another machine. After the listener reconnects, :meth:`JobEnds.recheck`
  wakes every waiter to read its job once (a notification may have been missed meanwhile).

The waiter reads its job once before waiting and once after each wake-up; it never polls
the database and holds no connection while it waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gengate.errors import GatewayTimeout
from gengate.jobs import Job

__all__ = ["JobEnds"]


class JobEnds:
    """The completion events of the jobs this node's requests wait on."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._holders: dict[str, int] = {}

    def __len__(self) -> int:
        """How many jobs are waited on now."""
        return len(self._waiting)

    def ended(self, job_id: str) -> None:
        """``job_id`` ended (here or on another node): wake its waiters."""
        future = self._waiting.get(job_id)
        if future is not None and not future.done():
            future.set_result(None)

    def recheck(self) -> None:
        """Notifications may have been missed: every waiter reads its job again."""
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)

    def _watch(self, job_id: str) -> asyncio.Future[None]:
        future = self._waiting.get(job_id)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._waiting[job_id] = future
        self._holders[job_id] = self._holders.get(job_id, 0) + 1
        return future

    def _unwatch(self, job_id: str) -> None:
        left = self._holders.get(job_id, 1) - 1
        if left <= 0:
            self._holders.pop(job_id, None)
            self._waiting.pop(job_id, None)
        else:
            self._holders[job_id] = left

    async def pause(self, job_id: str, seconds: float) -> None:
        """Return when ``job_id`` ends on this node (or another node says so), or after
        ``seconds``: what a live view waits on between two reads of its job."""
        future = self._watch(job_id)
        try:
            await asyncio.wait_for(asyncio.shield(future), seconds)
        except TimeoutError:
            pass
        finally:
            self._unwatch(job_id)

    async def wait(self, job_id: str, read: Callable[[], Awaitable[Job]],
                   timeout: float) -> Job:
        """The job once ``read()`` shows it ended; :class:`GatewayTimeout` (504, the jobId
        in ``data``) past ``timeout`` seconds. Cancelling the caller (a client that went
        away) only stops the waiting: the job goes on."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while True:
            # watch first, then read: an end between the two still wakes us
            future = self._watch(job_id)
            try:
                job = await read()
                if job.status.terminal:
                    return job
                left = until - loop.time()
                if left <= 0:
                    raise _timeout(job_id)
                try:
                    # shielded: a timeout here must not cancel the future others share
                    await asyncio.wait_for(asyncio.shield(future), left)
                except TimeoutError:
                    raise _timeout(job_id) from None
            finally:
                self._unwatch(job_id)


def _timeout(job_id: str) -> GatewayTimeout:
    return GatewayTimeout(f"Timeout: job {job_id} is still running; fetch it later or retry "
                          "with the same Idempotency-Key", data={"jobId": job_id,
                                                                 "job_id": job_id})
