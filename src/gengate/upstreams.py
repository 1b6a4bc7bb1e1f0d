"""The worker's view of the upstream accounts: one provider per account, one batched
poller per account, and the health checks that bring accounts back.

A provider is built from the account's row (its credentials opened here, in the worker,
and nowhere else) and kept until the row's version changes. All of an account's running
jobs share one :class:`BatchPoller`, so an account is asked about its tasks once per poll
interval however many jobs it runs.

Whoever calls a provider holds it (:meth:`Upstreams.hold`, an ``async with`` block). When
its account changes, new work goes to a new provider; the old one serves the blocks that
hold it until they end, and is closed (its poller stopped, then :meth:`Provider.close`)
once none does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from gengate.accounts import FailureKind
from gengate.background import spawn
from gengate.clock import Clock
from gengate.config import Settings
from gengate.credentials import CredentialBox
from gengate.errors import GengateError
from gengate.jobs import Job
from gengate.netguard import NetGuard
from gengate.products.base import AdapterContext
from gengate.products.registry import Registry, builtin
from gengate.providers.base import Provider, ProviderError, ProviderUpdate, TaskState
from gengate.providers.local import LocalProvider
from gengate.store import AccountRow, Store
from gengate.upstream_notify import NotifyLinks

__all__ = ["BatchPoller", "Held", "Upstreams"]

log = logging.getLogger("gengate.upstreams")

#: how long a nudge waits for others to share its request (:meth:`BatchPoller.nudge`)
NUDGE_GATHER = 0.01
#: the most tasks kept nudged for a job that has not polled yet
MAX_NUDGED = 10_000
#: while an account's upstream calls (an end heard within HEARD_FOR seconds), its rounds
#: run this many times further apart: the calls bring the ends, the rounds the progress
#: and whatever a lost call would have told
QUIETER = 5
HEARD_FOR = 120.0
#: seconds a job that knows its task's progress may sleep through unchanged rounds, after
#: which it looks at its deadline again (the worker also fails overdue jobs itself, and
#: stops a sleeping job whose lease it lost)
QUIET_WAKE = 60.0
#: health checks run at once, and how long one may take
PROBE_CONCURRENCY = 8
PROBE_TIMEOUT = 15.0


class BatchPoller:
    """Collects the polls of many jobs on one account and answers them with one
    :meth:`Provider.poll_many` call per interval. Rounds start every ``interval`` seconds
    (a round that took longer starts the next one at once), so that a task's end is seen
    within one interval however many tasks a round asks about."""

    def __init__(self, provider: Provider, interval: float,
                 on_error: Callable[[ProviderError], Awaitable[None]]):
        self.provider = provider
        self.interval = interval
        self._on_error = on_error
        self._waiting: dict[str, list[_Waiter]] = {}
        self._task: asyncio.Task[None] | None = None
        #: tasks the upstream said ended since the last round, polled early
        self._nudged: set[str] = set()
        self._early: asyncio.TimerHandle | None = None
        self._early_rounds: set[asyncio.Task[None]] = set()
        #: the event loop's time of the last call about an end (never: -inf)
        self._heard = float("-inf")

    async def poll(self, upstream_id: str, progress: int | None = None
                   ) -> ProviderUpdate | None:
        """The task's state at the next batch; None if the upstream no longer knows it.

        Given the ``progress`` the caller already knows, a task still running at no more
        than that is not reported: the caller sleeps through such rounds (with thousands
        of jobs in flight, waking each at every round cost more than the polling itself),
        and hears at the latest :data:`QUIET_WAKE` seconds later what it would have heard."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), progress, loop.time() + QUIET_WAKE)
        self._waiting.setdefault(upstream_id, []).append(waiter)
        self._keep_running()
        if upstream_id in self._nudged:
            self._schedule_early()
        return await waiter.future

    def nudge(self, upstream_id: str) -> None:
        """The upstream said the task ended: ask about it now (with the others nudged
        within :data:`NUDGE_GATHER`, in one request) rather than at the next round. A job
        that is not waiting at this moment is asked as soon as it polls again, if that
        comes before the round; a task no job here follows costs nothing."""
        self._nudged.add(upstream_id)
        self._heard = asyncio.get_running_loop().time()
        if upstream_id in self._waiting:
            self._schedule_early()

    def round_interval(self) -> float:
        """Seconds between two rounds: the account's interval, :data:`QUIETER` times it
        while its upstream calls about ends."""
        heard = asyncio.get_running_loop().time() - self._heard < HEARD_FOR
        return self.interval * QUIETER if heard else self.interval

    def _keep_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = spawn(self._run(), "gengate-batch-poll")

    def _schedule_early(self) -> None:
        if self._early is None:
            self._early = asyncio.get_running_loop().call_later(NUDGE_GATHER,
                                                                self._start_early)

    def _start_early(self) -> None:
        self._early = None
        due = [i for i in self._nudged if i in self._waiting]
        if not due:
            return
        self._nudged.difference_update(due)
        batch = {i: self._waiting.pop(i) for i in due}
        task = spawn(self._early_round(batch), "gengate-early-poll")
        self._early_rounds.add(task)
        task.add_done_callback(self._early_rounds.discard)

    async def _early_round(self, batch: dict[str, list[_Waiter]]) -> None:
        """Poll the nudged tasks. It only comes early: should it fail, its jobs wait for
        the next round as if no call had come (nor does its failure count against the
        account, which the round will tell)."""
        try:
            answers = await self.provider.poll_many(list(batch))
        except Exception as exc:  # noqa: BLE001 - the round asks again
            log.info("event=early_poll_failed provider=%s error=%s", self.provider.name,
                     type(exc).__name__)
            self._wait_again(batch)
            return
        except BaseException:
            _fail(batch, _stopped())
            raise
        self._answer(batch, answers)

    def _answer(self, batch: dict[str, list[_Waiter]],
                answers: dict[str, ProviderUpdate]) -> None:
        """Wake the waiters whose task changed for them; the others wait for the next
        round (:meth:`poll`)."""
        now = asyncio.get_running_loop().time()
        unchanged: dict[str, list[_Waiter]] = {}
        for upstream_id, waiters in batch.items():
            update = answers.get(upstream_id)
            for waiter in waiters:
                if waiter.future.done():
                    continue
                if waiter.sleeps_through(update, now):
                    unchanged.setdefault(upstream_id, []).append(waiter)
                else:
                    waiter.future.set_result(update)
        if unchanged:
            self._wait_again(unchanged)

    def _wait_again(self, batch: dict[str, list[_Waiter]]) -> None:
        for upstream_id, waiters in batch.items():
            self._waiting.setdefault(upstream_id, []).extend(waiters)
        self._keep_running()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.round_interval()
        while True:
            # polls that arrive while we wait ride along in the same request; the jobs
            # answered by the last round poll again meanwhile, so rounds keep their pace
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if not self._waiting:
                return
            next_at = loop.time() + self.round_interval()
            batch, self._waiting = self._waiting, {}
            # this round asks about them all; a task nudged while its job was not waiting
            # is kept for its next poll, and the set stays bounded
            self._nudged.difference_update(batch)
            if len(self._nudged) > MAX_NUDGED:
                self._nudged.clear()
            live = {k: [w for w in v if not w.future.done()] for k, v in batch.items()}
            live = {k: v for k, v in live.items() if v}
            if not live:
                continue
            # whatever happens, every waiting job hears an answer or an error
            try:
                answers = await self.provider.poll_many(list(live))
            except ProviderError as exc:
                _fail(live, exc)
                try:
                    await self._on_error(exc)
                except Exception:
                    log.exception("event=account_failure_not_recorded")
                continue
            except BaseException as exc:  # an adapter bug must not strand the jobs
                if not isinstance(exc, Exception):
                    _fail(live, _stopped())
                    raise
                log.exception("event=poll_crashed provider=%s", self.provider.name)
                _fail(live, ProviderError(
                    "[Upstream unavailable] polling failed", kind=FailureKind.UNAVAILABLE))
                continue
            self._answer(live, answers)

    def cancel(self) -> list[asyncio.Task[None]]:
        """Stop (shutdown): waiting jobs are told, not left hanging; returns the polling
        tasks, to be awaited before the provider is closed."""
        tasks = [*([self._task] if self._task is not None else []), *self._early_rounds]
        self._task = None
        if self._early is not None:
            self._early.cancel()
            self._early = None
        for task in tasks:
            task.cancel()
        waiting, self._waiting = self._waiting, {}
        _fail(waiting, _stopped())
        return tasks


def _stopped() -> ProviderError:
    """What jobs waiting on a stopped poller hear."""
    return ProviderError("[Upstream unavailable] polling stopped", kind=FailureKind.UNAVAILABLE)


class _Waiter:
    """One job's poll: its future, the progress it knows (None: any answer wakes it) and
    the loop time after which an unchanged answer wakes it all the same."""

    __slots__ = ("future", "progress", "until")

    def __init__(self, future: asyncio.Future[ProviderUpdate | None], progress: int | None,
                 until: float):
        self.future, self.progress, self.until = future, progress, until

    def sleeps_through(self, update: ProviderUpdate | None, now: float) -> bool:
        return (self.progress is not None and update is not None
                and update.state is TaskState.RUNNING and update.progress <= self.progress
                and now < self.until)


def _fail(waiting: dict[str, list[_Waiter]], error: ProviderError) -> None:
    for waiters in waiting.values():
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)


class Held:
    """An account's row, provider and poller, in use for an ``async with`` block."""

    def __init__(self, row: AccountRow | None, provider: Provider, poller: BatchPoller,
                 release: Callable[[], Awaitable[None]]):
        self.row, self.provider, self.poller = row, provider, poller
        self._release = release

    async def __aenter__(self) -> tuple[AccountRow | None, Provider, BatchPoller]:
        return self.row, self.provider, self.poller

    async def __aexit__(self, *exc: object) -> None:
        await self._release()


class Upstreams:
    """Providers and pollers per account, built on demand from the store."""

    def __init__(self, settings: Settings, store: Store, box: CredentialBox,
                 http: httpx.AsyncClient, clock: Clock, local: LocalProvider,
                 on_change: Callable[[], None] = lambda: None,
                 hosting_guard: NetGuard | None = None, products: Registry | None = None,
                 notify_links: NotifyLinks | None = None):
        self.products = products if products is not None else builtin()
        #: the URL each account's upstream calls when a task changes (None: not given)
        self.notify_links = notify_links
        self.settings = settings
        #: where users' own accounts may point (checked before each job and probe)
        self.hosting_guard = hosting_guard or NetGuard()
        #: called after an account's health changed (admission's view of the pool is stale)
        self.on_change = on_change
        self.store = store
        self.box = box
        self.http = http
        self.clock = clock
        self.local = local
        #: (account id, product) -> (row version, provider, poller)
        self._built: dict[tuple[int, str], tuple[int, Provider, BatchPoller]] = {}
        #: providers of accounts that changed since, closed once nothing holds them
        self._retired: list[tuple[Provider, BatchPoller]] = []
        #: id(provider) -> the blocks holding it
        self._holds: dict[int, int] = {}

    async def hold(self, account_id: int | None, product: str = "midjourney") -> Held:
        """The account's row, and its provider and poller for ``product``, for an
        ``async with`` block (jobs from before accounts existed, with no account, run on
        the local renderer). A :class:`ProviderError` when the account cannot serve."""
        row, provider, poller = await self._account(account_id, product)
        held = self._held(row, provider, poller)
        try:
            await self._close_retired()  # the provider this one replaced, if nothing holds it
        except BaseException:
            self._drop(provider)
            raise
        return held

    async def _account(self, account_id: int | None, product: str,
                       ) -> tuple[AccountRow | None, Provider, BatchPoller]:
        if account_id is None:
            return None, self.local, self._local_poller()
        row = await self.store.account_for_worker(account_id)
        if row is None:
            raise ProviderError("[Upstream account] the job's account no longer exists",
                                kind=FailureKind.LOST)
        if row.account.owner_id is not None and row.base_url:
            # a user's own upstream: its address is checked again before every job
            await self._check_hosted(row)
        return (row, *self._built_for(row, product))

    async def _check_hosted(self, row: AccountRow) -> None:
        try:
            await self.hosting_guard.check(str(row.base_url), "baseUrl")
        except GengateError as exc:
            # a name that does not resolve for now is a blip; one that resolves to a
            # refused address needs its owner
            blip = "cannot resolve" in exc.message
            raise ProviderError(f"[Upstream account] {exc.message}",
                                kind=FailureKind.UNAVAILABLE if blip else FailureKind.AUTH,
                                ) from None

    def _local_poller(self) -> BatchPoller:
        built = self._built.get((0, ""))
        if built is None:
            built = self._built[(0, "")] = (0, self.local, self._poller(None, self.local))
        return built[2]

    def _built_for(self, row: AccountRow, product: str) -> tuple[Provider, BatchPoller]:
        account_id = row.account.id
        # the local renderer serves every product with one provider
        local = row.account.provider == "local"
        key = (account_id, "" if local else product)
        built = self._built.get(key)
        if built is not None and built[0] == row.version:
            return built[1], built[2]
        # the account changed: new jobs use a new provider; the jobs that hold the old one
        # keep it until they end, and it is closed after them
        provider = self.local if local else self._build(row, product)
        poller = self._poller(account_id, provider)
        if built is not None and built[1] is not self.local:
            self._retired.append((built[1], built[2]))
        self._built[key] = (row.version, provider, poller)
        return provider, poller

    def _held(self, row: AccountRow | None, provider: Provider, poller: BatchPoller) -> Held:
        self._holds[id(provider)] = self._holds.get(id(provider), 0) + 1
        return Held(row, provider, poller, lambda: self._release(provider))

    def _drop(self, provider: Provider) -> bool:
        """One hold of ``provider`` less; whether it was the last."""
        key = id(provider)
        self._holds[key] -= 1
        if self._holds[key]:
            return False
        del self._holds[key]
        return True

    async def _release(self, provider: Provider) -> None:
        if self._drop(provider):
            await self._close_retired()

    async def _close_retired(self) -> None:
        """Close the replaced providers that no block holds any more."""
        idle = [(p, poller) for p, poller in self._retired if id(p) not in self._holds]
        if not idle:
            return
        self._retired = [r for r in self._retired if id(r[0]) in self._holds]
        for provider, poller in idle:
            await _close(provider, poller)

    def _poller(self, account_id: int | None, provider: Provider) -> BatchPoller:
        # a remote account polls at its own interval (pollInterval, else the setting); the
        # local renderer as often as its progress steps need
        if provider is self.local:
            # its own pace (0 when it renders at once: the result is there at the first poll)
            interval = min(self.local.poll_interval, self.settings.upstream_poll_interval)
        else:
            interval = provider.poll_interval or self.settings.upstream_poll_interval

        async def on_error(exc: ProviderError) -> None:
            if account_id is not None:
                await self.failed(account_id, exc)

        return BatchPoller(provider, interval, on_error)

    def _build(self, row: AccountRow, product: str) -> Provider:
        kind = row.account.provider
        try:
            secrets = self.box.open(row.credentials)
        except GengateError as exc:
            # the deployment's key changed: an operator must act, the jobs go elsewhere
            raise ProviderError(exc.message, kind=FailureKind.AUTH) from None
        options: dict[str, Any] = row.options
        interval = float(options.get("pollInterval") or self.settings.upstream_poll_interval)
        factory = (self.products.get(product).adapters().get(kind)
                   if product in self.products else None)
        if factory is None:
            raise ProviderError(
                f"[Upstream account] provider {kind!r} cannot run {product} jobs",
                kind=FailureKind.BANNED)
        notify_url = (self.notify_links.url(row.account.id)
                      if self.notify_links is not None else None)
        return factory(AdapterContext(str(row.base_url or ""), secrets, options, self.http,
                                      interval, self.settings.upstream_timeout, notify_url))

    def nudge(self, account_id: int, upstream_id: str) -> None:
        """The account's upstream told of the task's end: whichever poller here follows
        it asks at once (:meth:`BatchPoller.nudge`)."""
        for (built_for, _), (_, _, poller) in self._built.items():
            if built_for == account_id:
                poller.nudge(upstream_id)

    # -- cancel ---------------------------------------------------------------------------
    async def can_cancel(self, job: Job) -> bool:
        """Whether the adapter running ``job`` can stop its task upstream (a job not yet
        submitted there has nothing to stop)."""
        if job.upstream_id is None:
            return True
        try:
            async with await self.hold(job.account_id, job.product) as (_, provider, _):
                return bool(getattr(provider, "supports_cancel", False))
        except ProviderError:
            return False

    async def cancel_job(self, job: Job) -> None:
        """Ask the upstream to stop the job's task (best effort: the job has ended here)."""
        if job.upstream_id is None:
            return
        try:
            async with await self.hold(job.account_id, job.product) as (_, provider, _):
                await provider.cancel(job.upstream_id)
        except Exception as exc:  # noqa: BLE001 - the job is ended either way
            log.info("event=upstream_cancel_failed job_id=%s error=%s", job.id,
                     type(exc).__name__)

    # -- health ---------------------------------------------------------------------------
    async def failed(self, account_id: int, exc: ProviderError) -> None:
        """Count an account-level failure; log the state change it causes."""
        if not exc.kind.account_level:
            return
        change = await self.store.account_failure(
            account_id, exc.kind, exc.message, exc.retry_after, self.clock.now(),
            self.settings.account_probe_interval)
        if change is not None:
            self.on_change()
            log.warning("event=account_state account_id=%s state=%s reason=%r until=%s",
                        account_id, change.state.value, change.reason, change.until)

    async def worked(self, row: AccountRow | None) -> None:
        """A submission went through: a cooling account is healthy again."""
        if row is None or (row.failures == 0 and row.account.state.value == "healthy"):
            return
        if await self.store.account_ok(row.account.id, self.clock.now(), "submission succeeded"):
            self.on_change()
            log.info("event=account_state account_id=%s state=healthy reason=submission",
                     row.account.id)

    async def probe_due(self) -> int:
        """Check the accounts that are due (cooling past their time, or flagged), a few at
        a time and each within :data:`PROBE_TIMEOUT`; returns how many came back."""
        rows = await self.store.due_probes(self.clock.now(), self.settings.account_probe_interval)
        gate = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def one(row: AccountRow) -> bool:
            async with gate:
                return await self._probe(row)

        results = await asyncio.gather(*(one(r) for r in rows))
        return sum(results)

    async def _probe(self, row: AccountRow) -> bool:
        if await self._check(row) is not None:
            return False
        return await self._came_back(row)

    async def _check(self, row: AccountRow) -> ProviderError | None:
        """Probe one account (within :data:`PROBE_TIMEOUT`); a failure is counted against
        it as a job's would be, and returned."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                if row.account.owner_id is not None and row.base_url:
                    await self._check_hosted(row)
                product = row.account.products[0]
                async with self._held(row, *self._built_for(row, product)) as (_, provider, _):
                    await provider.probe()
        except TimeoutError:
            failure = ProviderError("[Upstream unavailable] the health check timed out",
                                    kind=FailureKind.UNAVAILABLE)
        except ProviderError as exc:
            failure = exc if exc.kind.account_level else ProviderError(
                exc.message, kind=FailureKind.UNAVAILABLE)
        else:
            return None
        await self.failed(row.account.id, failure)
        return failure

    async def _came_back(self, row: AccountRow) -> bool:
        if await self.store.account_ok(row.account.id, self.clock.now(), "probe succeeded"):
            self.on_change()
            log.info("event=account_state account_id=%s state=healthy reason=probe",
                     row.account.id)
            return True
        return False

    async def check_now(self, account_id: int, owner_id: int = 0) -> str | None:
        """Probe one account now, exactly as the background health pass does (its state
        follows the answer: a failure counts against it, success makes it healthy); the
        failure's message, or ``None`` when it answered. ``owner_id``: whose account it
        must be (0: the operator's pool; another owner's is 404)."""
        row = await self.store.get_account(account_id, owner_id)
        failure = await self._check(row)
        if failure is not None:
            return failure.message
        await self._came_back(row)
        return None

    async def close(self) -> None:
        built = [(p, poller) for _, p, poller in self._built.values()] + self._retired
        polling = [task for _, poller in built for task in poller.cancel()]
        # a provider is closed only once nothing polls through it any more
        await asyncio.gather(*polling, return_exceptions=True)
        for provider, _ in built:
            if provider is not self.local:
                await provider.close()
        self._built.clear()
        self._retired.clear()


async def _close(provider: Provider, poller: BatchPoller) -> None:
    """Stop a replaced provider's poller (nobody waits on it), then close the provider."""
    await asyncio.gather(*poller.cancel(), return_exceptions=True)
    try:
        await provider.close()
    except Exception:
        log.exception("event=provider_close_failed provider=%s", provider.name)
