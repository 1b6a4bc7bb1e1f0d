"""Result retention: the files of jobs that ended more than a product's retention period
ago are deleted from whichever store holds them. Job and ledger rows stay; the job's fetch
body then says that its result expired.

Any node may run a pass: each job is claimed in the database before its files are deleted,
so two nodes never delete the same job's files (a claim lapses after ``CLAIM_SECONDS``, so
a node that died mid-pass leaves nothing behind for good).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gengate.background import supervise
from gengate.clock import Clock
from gengate.errors import GengateError
from gengate.results import result_files
from gengate.resultstores import ResultStores
from gengate.store import Store

__all__ = ["RetentionPolicy", "ResultRetention"]

log = logging.getLogger("gengate.retention")

DAY = 86400.0
#: how long one node's claim on a job's files holds
CLAIM_SECONDS = 600.0
BATCH = 100


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days result files are kept: ``default`` for every product, ``per_product`` by
    product name; 0 keeps them forever."""

    default: float = 0.0
    per_product: dict[str, float] | None = None

    def days(self, product: str) -> float:
        return (self.per_product or {}).get(product, self.default)

    def cutoffs(self, now: float) -> tuple[dict[str, float | None], float | None]:
        def cutoff(days: float) -> float | None:
            return now - days * DAY if days > 0 else None
        return ({name: cutoff(days) for name, days in (self.per_product or {}).items()},
                cutoff(self.default))

    @property
    def enabled(self) -> bool:
        return self.default > 0 or any(d > 0 for d in (self.per_product or {}).values())


class ResultRetention:
    def __init__(self, store: Store, stores: ResultStores, clock: Clock,
                 policy: RetentionPolicy, interval: float = 3600.0, batch: int = BATCH,
                 on_expired: Callable[[str], None] = lambda _job_id: None):
        self.store = store
        self.stores = stores
        self.clock = clock
        self.policy = policy
        self.interval = interval
        self.batch = batch
        self.on_expired = on_expired
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """One pass over everything due; returns how many jobs' files it deleted."""
        if not self.policy.enabled:
            return 0
        expired = 0
        while True:
            now = self.clock.now()
            cutoffs, default = self.policy.cutoffs(now)
            batch = await self.store.claim_expiring_results(
                cutoffs, default, self.owner, now, CLAIM_SECONDS, self.batch)
            if not batch:
                return expired
            for item in batch:
                if await self._expire(item.job_id, item.product, item.result):
                    expired += 1

    async def _expire(self, job_id: str, product: str, result: dict[str, Any]) -> bool:
        files = result_files(result)
        try:
            store = self.stores.named(str(result.get("store") or "local"))
            for key in files:
                await store.delete(key)
        except GengateError as exc:
            log.warning("event=result_expiry_failed job_id=%s error=%s", job_id, exc.message)
            await self.store.release_result_claim(job_id, self.owner)
            return False
        if files:
            result = {**result, "expired": True, "expiredAt": self.clock.now(),
                      "retentionDays": self.policy.days(product)}
        done = await self.store.mark_result_expired(job_id, self.owner, result,
                                                    self.clock.now())
        if done:
            self.on_expired(job_id)
        if done and files:
            log.info("event=result_expired job_id=%s files=%d", job_id, len(files))
        return done and bool(files)

    # -- the periodic pass of a worker ---------------------------------------------------
    def start(self) -> None:
        if self.policy.enabled and self._task is None:
            self._task = supervise(self._loop, "gengate-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("event=retention_pass_failed")
            await asyncio.sleep(self.interval)
