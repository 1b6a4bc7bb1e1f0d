"""The webhook dispatcher: delivers the outbox, signed, with retries, to safe addresses.

Each notification is the job's fetch body, POSTed as JSON to its ``hookUrl``; HTTP 200 is
delivered (TTAPI's rule), anything else is retried on the :class:`RetryPolicy` and given up
after its last attempt. Headers follow the Standard Webhooks specification: ``webhook-id``
(stable across attempts), ``webhook-timestamp`` and ``webhook-signature``. Deliveries are
claimed on leases, so any node resumes what another left pending.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
import time
import uuid
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from gengate import __version__
from gengate.background import spawn, supervise
from gengate.clock import Clock
from gengate.config import Settings
from gengate.errors import BadRequest
from gengate.metrics import Metrics
from gengate.netguard import NetGuard, Target
from gengate.retry import RetryPolicy
from gengate.store import Delivery, Store
from gengate.store.outbox import Sealer

__all__ = ["Dispatcher", "WebhookService"]

log = logging.getLogger("gengate.webhooks")

#: the most of a receiver's answer that is read
MAX_RESPONSE = 64 * 1024
#: seconds between retention passes over the delivery log
PURGE_EVERY = 3600.0


class Dispatcher:
    def __init__(self, settings: Settings, store: Store, clock: Clock, guard: NetGuard,
                 box: Sealer, metrics: Metrics | None = None, owner: str | None = None):
        self.settings = settings
        #: opens the users' sealed signing secrets
        self.box = box
        self.store = store
        self.clock = clock
        self.guard = guard
        self.metrics = metrics or Metrics()
        self.policy = RetryPolicy(
            attempts=settings.webhook_attempts, base=settings.webhook_backoff,
            factor=settings.webhook_backoff_factor, cap=settings.webhook_backoff_max,
        )
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-hooks-{uuid.uuid4().hex[:6]}"
        self._reclaimed = False
        self.http = httpx.AsyncClient(
            follow_redirects=False, timeout=httpx.Timeout(settings.webhook_timeout),
            limits=httpx.Limits(max_connections=settings.webhook_concurrency),
            headers={"User-Agent": f"gengate-webhooks/{__version__}"},
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._next_purge = 0.0

    def start(self) -> None:
        self._task = supervise(self._loop, "gengate-webhooks")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*([self._task] if self._task else []), *running,
                             return_exceptions=True)
        await self.http.aclose()

    async def _loop(self) -> None:
        lease = self.settings.webhook_timeout * 2 + 5
        if not self._reclaimed:
            await self.store.release_deliveries(self.owner)  # left by this node's last run
            self._reclaimed = True
        while not self._stopping:
            self._wake.clear()
            try:
                free = self.settings.webhook_concurrency - len(self._running)
                if free > 0:
                    for delivery in await self.store.claim_deliveries(
                            self.owner, free, self.clock.now(), lease, self.box):
                        task = spawn(self._deliver(delivery), f"gengate-hook-{delivery.id}")
                        self._running.add(task)
                        task.add_done_callback(self._finished)
                await self._purge_if_due()
                wait = await self._until_next()
            except Exception:
                log.exception("event=webhook_claim_failed")
                wait = self.settings.poll_interval
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    async def _purge_if_due(self) -> None:
        """Retention: drop delivery logs older than the setting, once an hour per node."""
        now = self.clock.now()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY
        before = now - self.settings.webhook_retention_days * 86400
        while (removed := await self.store.purge_deliveries(before)) > 0:
            log.info("event=webhook_log_purged rows=%d", removed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _until_next(self) -> float:
        due = await self.store.next_delivery_due()
        if due is None:
            return self.settings.poll_interval
        return min(self.settings.poll_interval, max(0.005, due - self.clock.now()))

    async def _deliver(self, delivery: Delivery) -> None:
        started, t0 = self.clock.now(), time.perf_counter()
        status, error = None, None
        try:
            target = await self.guard.check(delivery.url)
            status = await self._post(target, delivery)
            if status != 200:
                error = f"answered HTTP {status}; only 200 counts as delivered"
        except BadRequest as exc:
            error = exc.message.removeprefix("hookUrl: ")
        except (httpx.TimeoutException, TimeoutError):
            error = f"timed out after {self.settings.webhook_timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - every attempt is recorded, whatever broke
            log.exception("event=webhook_crashed delivery=%s", delivery.id)
            error = f"internal error: {type(exc).__name__}"
        duration = (time.perf_counter() - t0) * 1000
        delivered = status == 200
        wait = None if delivered else self.policy.delay(delivery.attempts + 1)
        next_at = self.clock.now() + wait if wait is not None else None
        await self.store.record_attempt(delivery, self.owner, started, duration, status, error,
                                        next_at, delivered)
        outcome = "delivered" if delivered else ("retried" if next_at else "given_up")
        self.metrics.webhook_attempts.labels(outcome).inc()
        log.info("event=webhook_attempt delivery=%s job_id=%s attempt=%d status=%s outcome=%s",
                 delivery.id, delivery.job_id, delivery.attempts + 1, status, outcome)

    async def _post(self, target: Target, delivery: Delivery) -> int:
        now = datetime.datetime.now(tz=datetime.UTC)
        body = delivery.body.decode()
        pinned = target.request_args()
        pinned["headers"].update({
            "Content-Type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(delivery.secret).sign(delivery.id, now, body),
        })
        request = self.http.build_request("POST", content=delivery.body, **pinned)
        async with asyncio.timeout(self.settings.webhook_timeout):
            response = await self.http.send(request, stream=True)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE:
                        break
            finally:
                await response.aclose()
        return response.status_code


class WebhookService:
    """What a user may do with their webhooks: the signing secret, the delivery log,
    redelivery."""

    def __init__(self, store: Store, clock: Clock, dispatcher: Dispatcher | None,
                 box: Sealer):
        self.store = store
        self.clock = clock
        self.dispatcher = dispatcher
        #: seals the signing secrets at rest
        self.box = box

    async def secret(self, user_id: int, rotate: bool = False) -> str:
        return await self.store.signing_secret(user_id, self.box, rotate)

    async def deliveries(self, user_id: int, job_id: str | None, page: int,
                         limit: int) -> list[dict[str, Any]]:
        return await self.store.deliveries(user_id, job_id, page, limit)

    async def redeliver(self, user_id: int, delivery_id: str) -> None:
        await self.store.redeliver(user_id, delivery_id, self.clock.now())
        if self.dispatcher is not None:
            self.dispatcher.wake()
