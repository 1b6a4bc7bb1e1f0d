"""The job service: what every front calls to submit, act on, fetch and list jobs.

Submission order: check the request (prompt grammar, banned words, parent job, inputs),
price it, then admit it atomically (``max_queue``, balance, freeze, insert) through the
group-committing :class:`~gengate.admission.Admitter`.

Requests that carry images are checked against the user's queue and balance first
(:meth:`JobService.precheck`, a cheap read; the admission stays the authority), so a user
who could not be admitted never makes the server decode anything; products decode images
off the event loop, a few at a time (:meth:`JobService.decode`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import orjson

from gengate.admission import Admitter
from gengate.clock import Clock
from gengate.errors import (
    BadRequest,
    Conflict,
    InsufficientBalance,
    NotFound,
    QueueFull,
)
from gengate.jobs import Job, JobStatus, Mode, new_job_id
from gengate.lookups import BatchedLookup
from gengate.netguard import NetGuard
from gengate.pool import PoolService
from gengate.products.base import EngineOptions, JobRequest, Product, Submit
from gengate.products.registry import Registry, builtin
from gengate.quota import PriceTable
from gengate.resultstores import ResultStores
from gengate.store import Admission, Store, User
from gengate.waiting import JobEnds

__all__ = ["CANCEL_MESSAGE", "JobService", "Submit", "UpstreamCancel"]

#: finished jobs whose serialized fetch body is kept in memory
FINISHED_CACHE = 20_000
#: live jobs whose serialized fetch body is kept while the store says no job changed
LIVE_CACHE = 20_000
#: the failure message of a job its owner cancelled
CANCEL_MESSAGE = "Cancelled by the user"
#: images decoded at once (one 4096 x 4096 image takes about 50 MB while it is re-encoded)
IMAGE_SLOTS = 1
#: seconds a finished job's body is served from memory: its result files may still expire
#: or move to another store (on any node), which changes the body
FINISHED_TTL = 30.0

T = TypeVar("T")


class UpstreamCancel(Protocol):
    """Stopping a running job upstream (:class:`gengate.upstreams.Upstreams`)."""

    async def can_cancel(self, job: Job) -> bool:
        """Whether the adapter running ``job`` can stop its upstream task."""

    async def cancel_job(self, job: Job) -> None:
        """Ask the upstream to stop the job's task (best effort)."""


class JobService:
    """The one door to jobs for every front: submit (any product), fetch, list, wait,
    cancel."""

    def __init__(self, store: Store, clock: Clock, prices: PriceTable,
                 admitter: Admitter, guard: NetGuard, pool: PoolService,
                 hosting_prices: PriceTable, products: Registry | None = None,
                 max_queue: Mapping[str, int] | None = None,
                 upstream_cancel: UpstreamCancel | None = None,
                 stores: ResultStores | None = None, sync_timeout: float = 300.0):
        self.products = products if products is not None else builtin()
        #: per product: the most live jobs one user may have of it (499 past it)
        self.max_queue = dict(max_queue or {})
        self._upstream_cancel = upstream_cancel
        #: the completion events synchronous routes wait on (woken through the store)
        self.ends = JobEnds()
        self._stores = stores
        self._sync_timeout = sync_timeout
        self.store = store
        self.clock = clock
        self.prices = prices
        self.hosting_prices = hosting_prices
        self.pool = pool
        self.admitter = admitter
        self.guard = guard
        # bounds the threads (and the memory) that decoding images takes
        self._image_slots = asyncio.Semaphore(IMAGE_SLOTS)
        self._finished: OrderedDict[str, tuple[int, str, bytes, float]] = OrderedDict()
        #: job id -> (user, product, fetch body, the store's jobs stamp it was read under)
        self._live: dict[str, tuple[int, str, bytes, Any]] = {}
        # SQLite answers a lookup inline in microseconds; over a network, lookups that
        # arrive together share one query
        self._read_job = (
            store.get_job if store.db.is_sqlite else BatchedLookup(store.get_jobs).get
        )

    # -- before the expensive part of a submit -------------------------------------------
    async def precheck(self, product: Product[Any], sub: Submit, action: str, variant: str,
                       *, parent: Job | None = None) -> None:
        """499 or 402 now if the job could not be admitted as things stand, before any
        expensive work on its inputs. A cheap read; :meth:`submit` stays the authority."""
        hosted = parent.hosted if parent is not None else sub.hosted
        prices = self.hosting_prices if hosted else self.prices
        await self._precheck(sub.user_id, product.name,
                             prices.price_milli(product.name, action, variant))

    async def precheck_any(self, user_id: int, product: Product[Any], action: str) -> None:
        """499 or 402 if the user could not be admitted for ``action`` of ``product`` at
        any of its lanes' prices: asked before a request's body (its images) is read."""
        prices = []
        for table in (self.prices, self.hosting_prices):
            for lane in product.lanes:
                try:
                    prices.append(table.price_milli(product.name, action, lane.value))
                except BadRequest:
                    continue  # not priced so: admission says so
        await self._precheck(user_id, product.name, min(prices, default=0))

    async def _precheck(self, user_id: int, product: str, price: int) -> None:
        user = await self.store.get_user(user_id)
        if user.in_flight >= user.max_queue:
            raise QueueFull(f"Insufficient queues for {product}: your in-progress jobs "
                            f"reached max_queue ({user.max_queue})")
        if user.balance < price:
            raise InsufficientBalance()

    async def decode(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` (decoding images) in a thread, a few at a time."""
        async with self._image_slots:
            return await asyncio.to_thread(fn, *args)

    async def _parent(self, user_id: int, parent_id: str) -> Job:
        """The caller's SUCCESS job ``parent_id``. A follow-up runs where its parent ran
        (the same account, so the same pool and prices), whichever path it came by."""
        parent = await self.store.get_job(parent_id)
        if parent is None or parent.user_id != user_id:
            raise NotFound(f"jobId: job {parent_id} not found")
        if parent.status is not JobStatus.SUCCESS:
            raise BadRequest(f"jobId: job {parent_id} is {parent.status.value}, not SUCCESS")
        return parent

    async def _hook_url(self, url: str | None) -> str | None:
        """A webhook URL that is safe to call, or 400 naming what is wrong with it."""
        if not url:
            return None
        await self.guard.check(url)
        return url

    # -- any product --------------------------------------------------------------------
    async def submit(self, product: Product[Any], sub: Submit, request: JobRequest) -> Job:
        """Price the job (``product:action:variant``), check its hookUrl and that some
        account could run it, and admit it atomically (max_queue, balance, freeze, insert)."""
        parent = request.parent
        lane = request.lane
        timeout = product.timeout(lane, sub.timeout)
        hosted = parent.hosted if parent is not None else sub.hosted
        prices = self.hosting_prices if hosted else self.prices
        if parent is None:
            await self.pool.require_serving(sub.user_id if hosted else None, lane,
                                            sub.relax_fallback, product.name)
        engine = EngineOptions()
        if (sub.relax_fallback and lane is Mode.FAST and parent is None
                and Mode.RELAX in product.lanes):
            engine = replace(engine, relax_fallback=True, fallback_quota=prices.price_milli(
                product.name, request.action, Mode.RELAX.value))
        hook_url = await self._hook_url(sub.hook_url)
        if hook_url and sub.hook_progress:
            engine = replace(engine, hook_progress=True)
        if sub.request_hash:
            engine = replace(engine, request=sub.request_hash)
        if sub.sync:
            engine = replace(engine, sync=True)
        own = {k: v for k, v in request.options.to_json().items() if v is not None}
        params = engine.merged_into(own)
        now = self.clock.now()
        job = Job(
            id=request.job_id or new_job_id(), user_id=sub.user_id,
            product=product.name, action=request.action, mode=lane,
            status=JobStatus.PENDING_QUEUE, progress=0, prompt=request.prompt,
            quota=prices.price_milli(product.name, request.action, request.variant)
            * max(1, request.count),
            timeout=timeout, created_at=now, deadline=now + timeout, hook_url=hook_url,
            get_u_images=sub.get_u_images, parent_id=parent.id if parent else None,
            params=params, hosted=hosted, key_id=sub.key_id,
        )
        return await self.admitter.admit(
            Admission(job, sub.idempotency_key, list(request.inputs),
                      self.max_queue.get(product.name)))

    async def parent(self, user_id: int, job_id: str) -> Job:
        """The caller's SUCCESS job ``job_id``. A follow-up runs where its parent ran
        (the same account, so the same pool and prices), whichever path it came by."""
        return await self._parent(user_id, job_id)

    async def check_url(self, url: str, field_name: str) -> None:
        """400 naming the field unless gengate may fetch ``url``."""
        await self.guard.check(url, field_name)

    @property
    def sync_timeout(self) -> float:
        """Seconds a synchronous route waits (``GENGATE_SYNC_TIMEOUT``)."""
        return self._sync_timeout

    async def stored(self, key: str, store: str | None = None) -> bytes:
        """A stored result file's bytes (inline answers such as OpenAI's ``b64_json``)."""
        if self._stores is None:
            raise NotFound("file not found")
        return await self._stores.get(key, store)

    async def wait(self, user_id: int, job_id: str, timeout: float) -> Job:
        """The job once it ended (synchronous routes), waiting on its completion event
        (:mod:`gengate.waiting`): no polling, no connection held. Past ``timeout``: 504
        with the jobId, the job going on."""
        return await self.ends.wait(job_id, lambda: self.fetch(user_id, job_id), timeout)

    # -- reads --------------------------------------------------------------------------
    async def fetch(self, user_id: int, job_id: str, product: str | None = None) -> Job:
        job = await self._read_job(job_id) if job_id else None
        if job is None or job.user_id != user_id or (
                product is not None and job.product != product):
            raise NotFound(f"jobId: job {job_id} not found")
        return job

    async def fetch_body(self, user_id: int, job_id: str, product: str | None = None) -> bytes:
        """The fetch body in the job's product's shape, serialized. A finished job changes
        only when its result files expire or move, so its body is kept (in a bounded LRU,
        for ``FINISHED_TTL`` seconds) and later fetches skip the database. A live job's
        body is kept only while the store's jobs stamp stays the same (on SQLite: no
        transaction other than admissions wrote since, in this process or another), so
        polling a queued job reads its row once per change, not once per fetch."""
        cached = self._finished.get(job_id)
        if cached is not None and cached[0] == user_id and (
                product is None or cached[1] == product) and time.monotonic() < cached[3]:
            self._finished.move_to_end(job_id)
            return cached[2]
        # taken before the read: a change in between leaves the kept body stale under an
        # older stamp, which the next fetch sees as changed
        stamp = self.store.jobs_stamp()
        if stamp is not None:
            live = self._live.get(job_id)
            if live is not None and live[3] == stamp and live[0] == user_id and (
                    product is None or live[1] == product):
                return live[2]
        job = await self.fetch(user_id, job_id, product)
        body = orjson.dumps(self.products.fetch_body(job))
        if job.status.terminal:
            self._live.pop(job_id, None)
            self._finished[job_id] = (user_id, job.product, body,
                                      time.monotonic() + FINISHED_TTL)
            self._finished.move_to_end(job_id)
            if len(self._finished) > FINISHED_CACHE:
                self._finished.popitem(last=False)
        elif stamp is not None:
            if len(self._live) >= LIVE_CACHE:
                self._live.clear()  # the simplest bound: what is dropped is read again
            self._live[job_id] = (user_id, job.product, body, stamp)
        return body

    def forget(self, job_id: str) -> None:
        """Drop a finished job's kept body (its result expired or moved on this node)."""
        self._finished.pop(job_id, None)
        self._live.pop(job_id, None)

    async def list_jobs(self, user_id: int, *, page: int, limit: int,
                        status: str | list[str] | None, ascending: bool,
                        product: str | None = None) -> list[Job]:
        return await self.store.list_jobs(user_id, status, page, limit, ascending, product)

    async def user(self, user_id: int) -> User:
        return await self.store.get_user(user_id)

    # -- cancel -------------------------------------------------------------------------
    async def cancel(self, user_id: int, job_id: str) -> Job:
        """The owner's cancel, whatever the product. A queued job ends at once; a running
        one only where its upstream can stop it (asked after the job has ended here). The
        refund and the webhook are in the transaction that ends the job; a job that
        finished first stays finished (409)."""
        for _ in range(3):  # the job may move from queued to running under us
            job = await self.fetch(user_id, job_id)
            if job.status.terminal:
                raise Conflict(f"jobId: job {job_id} already ended ({job.status.value})")
            if job.status is JobStatus.ON_QUEUE and not await self._can_cancel(job):
                raise Conflict(f"jobId: job {job_id} is running upstream, and its upstream "
                               "cannot cancel it")
            ended = await self.store.cancel(job_id, user_id, job.status, CANCEL_MESSAGE,
                                            self.clock.now())
            if ended is None:
                continue
            self.forget(job_id)
            if job.status is JobStatus.ON_QUEUE and self._upstream_cancel is not None:
                await self._upstream_cancel.cancel_job(ended)
            return ended
        raise Conflict(f"jobId: job {job_id} changed while it was being cancelled; try again")

    async def _can_cancel(self, job: Job) -> bool:
        if self._upstream_cancel is None:
            return False
        return await self._upstream_cancel.can_cancel(job)

    async def illegal_count(self, user_id: int) -> int:
        return await self.store.illegal_count(user_id, self.clock.now())
