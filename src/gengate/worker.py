"""The worker: claims jobs on leases, runs them upstream, stores results, ends every job.

One loop claims as many jobs as it has free slots (each placed on an upstream account
with a free slot for its mode), wakes on new admissions (or polls), fails jobs past their
deadline and checks flagged accounts. A renewer keeps the leases of running jobs alive; a
job whose lease was lost is dropped here, because another worker now owns it. The upstream
task id is recorded as soon as the upstream accepts, so a takeover resumes polling instead
of submitting twice. A job whose account failed (rate limited, down, banned, ...) or lost
its task goes back to the queue for another account, its price still frozen: the user is
never charged twice.

At most once upstream: before a submit leaves, the job records "submitting" with a tag
unique to that send (``<job id>.<send>``), which the upstream keeps on the task where it
can. A worker that takes the job over with the tag still set (the last owner died between
the upstream's accept and saving the task id), or whose submit got no answer (a timeout,
a dropped connection), looks the task up by the tag before sending anything again. Where
the outcome stays unknown and the job moves on, the tag is kept as an orphan and any task
it started is cancelled when the job ends. Sends that may have started a task are counted
and bounded by ``max_resends``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from gengate.background import spawn, supervise
from gengate.batching import GroupCommit
from gengate.clock import Clock
from gengate.config import Settings
from gengate.errors import DatabaseUnavailable, GengateError
from gengate.jobs import EngineOptions, Job
from gengate.metrics import Metrics
from gengate.netguard import NetGuard
from gengate.products.registry import Registry, builtin
from gengate.providers.base import FailureKind, Provider, ProviderError, ProviderTask, TaskState
from gengate.results import ResultWriter, download
from gengate.store import AccountRow, Store
from gengate.upstreams import BatchPoller, Upstreams

__all__ = ["Worker"]

log = logging.getLogger("gengate.worker")

TIMEOUT_MESSAGE = "Job Timeout"
INTERNAL_MESSAGE = "[Internal error] Something went wrong, please try again later."


class LeaseLost(Exception):
    """Another worker owns the job now."""


class Reroute(Exception):
    """The job cannot go on where it is (the account failed, or lost the task): it goes
    back to the queue. ``orphan`` is the tag of a submit there whose outcome is unknown."""

    def __init__(self, error: ProviderError, orphan: str | None = None):
        super().__init__(error.message)
        self.error = error
        self.orphan = orphan


#: seconds between two passes over flagged accounts
PROBE_EVERY = 1.0
#: jobs in their start (account, submit upstream, records) at once
STARTING = 16
#: leases renewed in one transaction
RENEW_CHUNK = 500


class Worker:
    def __init__(self, settings: Settings, store: Store, upstreams: Upstreams,
                 results: ResultWriter, clock: Clock, http: httpx.AsyncClient,
                 on_event: Callable[[], None] = lambda: None, guard: NetGuard | None = None,
                 metrics: Metrics | None = None, products: Registry | None = None,
                 owner: str | None = None):
        self.products = products if products is not None else builtin()
        self.settings = settings
        self.store = store
        self.upstreams = upstreams
        self.results = results
        self.clock = clock
        self.http = http
        #: called after a change that may have queued a webhook
        self.on_event = on_event
        #: where downloads of user-given URLs may go (describe's ``url``)
        self.guard = guard or NetGuard()
        self.metrics = metrics or Metrics()
        #: the name leases are held under (the node's identity, see gengate.identity)
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._reclaimed = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()
        #: jobs waiting on their account's poller (one whose lease is lost stops at once)
        self._polling: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()
        self._probed_at = float("-inf")
        self._prober: asyncio.Task[None] | None = None
        #: jobs starting at once (their account read, their submit and its records): a
        #: claim of hundreds of jobs must not queue thousands of queries on the pool
        self._starting = asyncio.Semaphore(STARTING)
        #: progress of the jobs one poll round woke, written in one transaction
        self._progress: GroupCommit[tuple[str, int], bool] = GroupCommit(
            self._commit_progress)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [supervise(self._claim_loop, "gengate-claim"),
                       supervise(self._renew_loop, "gengate-renew")]

    def wake(self) -> None:
        """New work may be waiting (or the clock moved): look now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, give running jobs back to the queue, keep their upstream ids."""
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        prober = [self._prober] if self._prober is not None else []
        for task in prober:
            task.cancel()
        running = list(self._running.values())
        for task in running:
            task.cancel()
        # everything that may use the upstreams' clients has ended before they close
        await asyncio.gather(*self._tasks, *prober, *running, return_exceptions=True)
        await self._progress.drained()
        await self.upstreams.close()

    def nudge(self, account_id: int, upstream_id: str) -> None:
        """The account's upstream told of the end of a task: if a job here follows it,
        it is polled now rather than at the next round."""
        self.upstreams.nudge(account_id, upstream_id)

    @property
    def busy(self) -> int:
        return len(self._running)

    # -- loops --------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        if not self._reclaimed:
            # jobs this node's previous run held when it died: take them back now rather
            # than wait out their leases
            released = await self.store.release_owned(self.owner)
            self._reclaimed = True
            if released:
                log.info("event=leases_reclaimed owner=%s jobs=%d", self.owner, released)
        while not self._stopping:
            self._wake.clear()
            try:
                await self._reap_overdue()
                await self._probe_accounts()
                await self._claim()
            except Exception:
                log.exception("event=claim_failed owner=%s", self.owner)
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
            except TimeoutError:
                pass

    async def _claim(self) -> None:
        free = self.settings.worker_concurrency - len(self._running)
        if free <= 0:
            return
        claimed = await self.store.claim(self.owner, free, self.clock.now(),
                                         self.settings.lease_seconds, self._rng)
        for job_id in claimed.failed:
            log.info("event=job_failed job_id=%s reason=parent_account_gone", job_id)
            self.metrics.jobs_finished.labels("FAILED").inc()
        if claimed.failed:
            self.on_event()
        for job in claimed.jobs:
            running = self._running.get(job.id)
            if running is not None and not running.done():
                # its lease lapsed while this worker was slow, and this claim renewed it:
                # the job still runs here, never twice
                log.info("event=lease_retaken job_id=%s owner=%s", job.id, self.owner)
                continue
            log.info("event=job_claimed job_id=%s owner=%s resume=%s", job.id, self.owner,
                     job.upstream_id is not None)
            task = spawn(self._run(job), name=f"gengate-job-{job.id}")
            self._running[job.id] = task
            task.add_done_callback(functools.partial(self._done, job.id))

    def _done(self, job_id: str, task: asyncio.Task[None]) -> None:
        # a job requeued here may already run again under a new task: keep that one
        if self._running.get(job_id) is task:
            del self._running[job_id]
            self._lost.discard(job_id)
        self._wake.set()

    async def _reap_overdue(self) -> None:
        for job_id in await self.store.overdue(self.clock.now()):
            if await self.store.fail(job_id, None, TIMEOUT_MESSAGE, self.clock.now()):
                log.info("event=job_timeout job_id=%s", job_id)
                self.metrics.jobs_finished.labels("FAILED").inc()
                self.on_event()
                task = self._running.get(job_id)
                if task is not None:
                    task.cancel()
                await self._cancel_upstream(job_id)

    async def _cancel_upstream(self, job_id: str) -> None:
        """A job ended by its deadline may still run upstream, holding one of the account's
        real slots there: ask the upstream to stop it (best effort)."""
        job = await self.store.get_job(job_id)
        if job is None:
            return
        if job.upstream_id is None and job.submit_tag and job.account_id is not None:
            # it ended while a submit's outcome was unknown: that submit is an orphan too
            job = _with_orphan(job, job.account_id, job.submit_tag)
        await self._cancel_orphans(job)
        if job.upstream_id is None:
            return
        try:
            async with await self.upstreams.hold(job.account_id, job.product) as (_, provider,
                                                                                 _):
                await provider.cancel(job.upstream_id)
        except Exception as exc:  # noqa: BLE001 - the job is ended either way
            log.info("event=upstream_cancel_failed job_id=%s error=%s", job_id,
                     type(exc).__name__)

    async def _probe_accounts(self) -> None:
        """Start a health pass over due accounts, beside the claim loop (a slow upstream
        must not hold up claiming for everyone)."""
        now = self.clock.now()
        if now - self._probed_at < PROBE_EVERY or (
                self._prober is not None and not self._prober.done()):
            return
        self._probed_at = now
        self._prober = spawn(self._probe_pass(), name="gengate-probe")

    async def _probe_pass(self) -> None:
        try:
            if await self.upstreams.probe_due():
                self._wake.set()  # an account is back: look for work it can take
        except Exception:
            log.exception("event=probe_failed owner=%s", self.owner)

    async def _renew_loop(self) -> None:
        interval = self.settings.lease_seconds / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            held = sorted(self._running)
            until = self.clock.now() + self.settings.lease_seconds
            # a few hundred rows a transaction: one statement over thousands of running
            # jobs held their rows locked for seconds, and their progress writes waited
            for start in range(0, len(held), RENEW_CHUNK):
                chunk = held[start:start + RENEW_CHUNK]
                try:
                    kept = await self.store.renew(self.owner, chunk, until)
                except Exception:
                    log.exception("event=renew_failed owner=%s", self.owner)
                    continue
                for job_id in set(chunk) - kept:
                    self._lost.add(job_id)
                    task = self._running.get(job_id)
                    if job_id in self._polling and task is not None:
                        # it sleeps through unchanged rounds: stop it now, not at its
                        # next wake (its new owner follows the task)
                        log.info("event=lease_lost job_id=%s owner=%s", job_id, self.owner)
                        task.cancel()

    # -- one job ------------------------------------------------------------------------
    async def _run(self, job: Job) -> None:
        try:
            await self._run_job(job)
        except DatabaseUnavailable:
            # nothing about the job could be recorded, so nothing about it is decided: it
            # is given back to be run again (resumed from its recorded task, or found by
            # its submit's tag), or, if even that cannot be written, its lease lapses
            log.warning("event=job_given_back job_id=%s reason=database_unavailable", job.id)
            if not self._stopping:
                with contextlib.suppress(Exception):
                    await self.store.release(job.id, self.owner)

    async def _run_job(self, job: Job) -> None:
        try:
            try:
                async with self._starting:
                    held = await self.upstreams.hold(job.account_id, job.product)
            except ProviderError as exc:
                if exc.retryable:
                    raise Reroute(exc) from None
                raise
            async with held as (row, provider, poller):
                upstream_id = job.upstream_id
                if upstream_id is None:
                    async with self._starting:
                        task = None
                        if job.submit_tag is not None:
                            task = await self._task(job, provider)
                            upstream_id = await self._recover(job, provider, job.submit_tag,
                                                              task)
                        if upstream_id is None:
                            upstream_id = await self._submit(job, row, provider, task)
                await self._follow(job, provider, poller, upstream_id)
        except Reroute as exc:
            await self._reroute(job, exc.error, exc.orphan)
        except LeaseLost:
            log.info("event=lease_lost job_id=%s owner=%s", job.id, self.owner)
        except asyncio.CancelledError:
            if self._stopping:
                await asyncio.shield(self.store.release(job.id, self.owner))
            raise
        except DatabaseUnavailable:
            raise
        except GengateError as exc:
            await self._fail(job, exc.message)
        except Exception:
            log.exception("event=job_crashed job_id=%s", job.id)
            await self._fail(job, INTERNAL_MESSAGE)

    async def _recover(self, job: Job, provider: Provider, tag: str,
                       task: ProviderTask) -> str | None:
        """The task an earlier submit with ``tag`` started on this account, adopted as the
        job's own; ``None`` when it started none (or the upstream cannot tell: then the
        job is sent again, within its bounded resends)."""
        if not provider.finds_by_tag:
            log.info("event=submit_outcome_unknown job_id=%s account_id=%s", job.id,
                     job.account_id)
            return None
        try:
            found = await provider.find(tag, dataclasses.replace(task, tag=tag))
        except ProviderError as exc:
            if exc.retryable:
                raise Reroute(exc, orphan=tag) from None
            raise
        if found is None:
            return None
        if not await self.store.record_upstream(job.id, self.owner, found, provider.name):
            raise LeaseLost()
        log.info("event=job_recovered job_id=%s account_id=%s upstream_id=%s", job.id,
                 job.account_id, found)
        return found

    async def _submit(self, job: Job, row: AccountRow | None, provider: Provider,
                      task: ProviderTask | None) -> str:
        if job.sends > self.settings.max_resends:
            raise ProviderError(f"[Upstream failed] the job was sent upstream {job.sends} "
                                "times without a result; it is not sent again")
        task = task or await self._task(job, provider)
        tag = f"{job.id}.{job.sends + 1}"
        if not await self.store.mark_submitting(job.id, self.owner, tag, self.clock.now(),
                                                self.settings.lease_seconds):
            raise LeaseLost()
        try:
            upstream_id = await provider.submit(dataclasses.replace(task, tag=tag))
        except ProviderError as exc:
            if not exc.uncertain:
                await self.store.unmark_submitting(job.id, self.owner)
                if exc.retryable:
                    raise Reroute(exc) from None
                raise
            # the upstream may have taken it although no answer came: look before moving on
            found = (await self._recover(job, provider, tag, task)
                     if provider.finds_by_tag else None)
            if found is not None:
                await self.upstreams.worked(row)
                return found
            if exc.retryable:
                raise Reroute(exc, orphan=tag) from None
            raise
        await self.upstreams.worked(row)
        if not await self.store.record_upstream(job.id, self.owner, upstream_id, provider.name):
            current = await self.store.get_job(job.id)
            if current is None or current.upstream_id != upstream_id:
                await provider.cancel(upstream_id)  # not adopted by the job's new owner
            raise LeaseLost()
        log.info("event=job_submitted job_id=%s account_id=%s upstream_id=%s", job.id,
                 job.account_id, upstream_id)
        return upstream_id

    async def _reroute(self, job: Job, error: ProviderError, orphan: str | None) -> None:
        """Count the account's failure and queue the job again (or fail it: attempts are
        bounded, and a job without a deadline left to use has nothing to gain)."""
        if job.account_id is not None and error.kind.account_level:
            await self.upstreams.failed(job.account_id, error)
        if job.id in self._lost:
            return
        if job.attempts >= self.settings.max_attempts or self.clock.now() >= job.deadline:
            if orphan is not None and job.account_id is not None:
                job = _with_orphan(job, job.account_id, orphan)
            await self._fail(job, error.message)
            return
        if await self.store.requeue(job, self.owner, orphan):
            log.info("event=job_rerouted job_id=%s account_id=%s kind=%s attempt=%s",
                     job.id, job.account_id, error.kind.value, job.attempts)
            self._wake.set()

    async def _follow(self, job: Job, provider: Provider, poller: BatchPoller,
                      upstream_id: str) -> None:
        progress = job.progress
        while True:
            if job.id in self._lost:
                raise LeaseLost()
            if self.clock.now() >= job.deadline:
                await provider.cancel(upstream_id)
                await self._fail(job, TIMEOUT_MESSAGE)
                return
            self._polling.add(job.id)
            try:
                update = await poller.poll(upstream_id, progress)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                continue  # the upstream is unreachable for now: the task may still finish
            finally:
                self._polling.discard(job.id)
            if update is None:
                raise Reroute(ProviderError(
                    "[Upstream lost the task] the upstream no longer knows this job's task",
                    kind=FailureKind.LOST))
            if update.state is TaskState.RUNNING:
                if update.progress > progress:
                    progress = update.progress
                    await self._record_progress(job, progress)
                continue
            if update.state is TaskState.FAILED:
                if update.kind.account_level:
                    raise Reroute(ProviderError(update.message or INTERNAL_MESSAGE,
                                                kind=update.kind))
                await self._fail(job, update.message or INTERNAL_MESSAGE)
                await provider.forget(upstream_id)
                return
            files = self.results.for_job(self.upstreams.hosting_guard if job.hosted else None)
            result = await self.products.get(job.product).store_result(job, update, files)
            if await self.store.succeed(job.id, self.owner, result, self.clock.now()):
                log.info("event=job_succeeded job_id=%s", job.id)
                self.metrics.jobs_finished.labels("SUCCESS").inc()
                self.on_event()
                await provider.forget(upstream_id)
                await self._cancel_orphans(dataclasses.replace(job, upstream_id=upstream_id))
            return

    async def _record_progress(self, job: Job, progress: int) -> None:
        """Save a running job's progress: shown to its owner, not owed (a write that fails,
        such as one that waited too long for a connection, is skipped, not the job)."""
        try:
            await self._progress.submit((job.id, progress))
        except Exception:  # noqa: BLE001 - the next progress or the end is written anyway
            log.warning("event=progress_not_recorded job_id=%s", job.id, exc_info=True)

    async def _commit_progress(self, items: list[tuple[str, int]]
                               ) -> list[bool | GengateError]:
        raised = await self.store.record_progress(self.owner, items, self.clock.now())
        if raised:
            self.on_event()
        return [job_id in raised for job_id, _ in items]

    async def _fail(self, job: Job, message: str) -> None:
        limit = self.settings.illegal_prompt_daily_limit
        illegal = limit if self.products.get(job.product).counts_as_illegal(message) else None
        if await self.store.fail(job.id, self.owner, message, self.clock.now(), illegal):
            log.info("event=job_failed job_id=%s message=%r", job.id, message)
            self.metrics.jobs_finished.labels("FAILED").inc()
            self.on_event()
            await self._cancel_orphans(job)

    async def _cancel_orphans(self, job: Job) -> None:
        """Cancel the tasks that earlier submits of this ended job may have started on
        accounts it left without knowing (best effort: the job is ended either way)."""
        for account_id, tag in EngineOptions.of(job).orphans:
            try:
                async with await self.upstreams.hold(int(account_id), job.product) as (
                        _, provider, _):
                    if not provider.finds_by_tag:
                        continue
                    found = await provider.find(str(tag))
                    if found is not None and found != job.upstream_id:
                        await provider.cancel(found)
                        log.info("event=orphan_cancelled job_id=%s account_id=%s "
                                 "upstream_id=%s", job.id, account_id, found)
            except Exception as exc:  # noqa: BLE001 - best effort, never fails the job
                log.info("event=orphan_cancel_failed job_id=%s account_id=%s error=%s",
                         job.id, account_id, type(exc).__name__)

    async def _task(self, job: Job, provider: Provider) -> ProviderTask:
        product = self.products.get(job.product)
        return await product.task(job, _TaskFiles(self),
                                  with_parent_image=provider.wants_parent_image)


def _with_orphan(job: Job, account_id: int, tag: str) -> Job:
    """``job`` with one more submit whose outcome is unknown, to find and cancel later."""
    options = EngineOptions.of(job)
    options = dataclasses.replace(options, orphans=[*options.orphans, [account_id, tag]])
    return dataclasses.replace(job, params=options.merged_into(job.params))


class _TaskFiles:
    """What a product may read to build a task (:class:`~gengate.products.base.TaskIO`)."""

    def __init__(self, worker: Worker):
        self._worker = worker

    async def inputs(self, job: Job) -> list[bytes]:
        return await self._worker.store.job_inputs(job.id)

    async def job(self, job_id: str) -> Job | None:
        return await self._worker.store.get_job(job_id)

    async def stored(self, key: str) -> bytes:
        return await self._worker.results.storage.get(key)

    async def parent_file(self, result: dict[str, Any]) -> bytes:
        return await self._worker.results.read_back(result)

    async def download(self, url: str, field_name: str) -> bytes:
        try:
            target = await self._worker.guard.check(url, field_name)
        except GengateError as exc:
            raise ProviderError(f"[Invalid link!] {exc.message}") from None
        return await download(self._worker.http, url, user_link=True, target=target)
