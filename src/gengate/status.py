"""What the status endpoints tell: per mode, from the jobs that really ran recently."""

from __future__ import annotations

from typing import Any

from gengate.accounts import AccountState
from gengate.clock import Clock
from gengate.jobs import JobStatus, Mode
from gengate.store import Store

__all__ = ["StatusService"]

#: below this share of successes among recent finished jobs, a mode is reported degraded
HEALTHY_SUCCESS_RATE = 0.8


class StatusService:
    def __init__(self, store: Store, clock: Clock, window: int):
        self.store = store
        self.clock = clock
        self.window = window

    async def modes(self) -> dict[str, dict[str, Any]]:
        """``/midjourney/status``: status, runningMessage and averageExecute per mode."""
        since = self.clock.now() - self.window
        stats = {m.value: {"ok": 0, "failed": 0, "avg": None} for m in Mode}
        for row in await self.store.mode_stats(since):
            entry = stats.setdefault(row.mode, {"ok": 0, "failed": 0, "avg": None})
            if row.status == JobStatus.SUCCESS.value:
                entry["ok"], entry["avg"] = row.n, row.avg
            else:
                entry["failed"] = row.n
        depth = {(r.mode, r.status): r.n for r in await self.store.queue_depth()}
        capacity = await self.capacity()
        out: dict[str, dict[str, Any]] = {}
        for mode, entry in stats.items():
            finished = entry["ok"] + entry["failed"]
            rate = entry["ok"] / finished if finished else None
            degraded = rate is not None and rate < HEALTHY_SUCCESS_RATE
            slots, in_use, cooling = capacity.get(mode, (0, 0, 0))
            status, message = 200, "Endpoints running"
            if not slots and cooling:
                status, message = 500, "Degraded: upstream accounts are cooling down"
            elif not slots:
                status, message = 503, "Unavailable: no healthy upstream account serves this mode"
            elif degraded:
                status, message = 500, "Degraded: many recent jobs failed"
            out[mode] = {
                "status": status,
                "runningMessage": message,
                "averageExecute": round(entry["avg"], 2) if entry["avg"] is not None else 0,
                "successRate": round(rate, 4) if rate is not None else None,
                "finished": finished,
                "queued": depth.get((mode, JobStatus.PENDING_QUEUE.value), 0),
                "running": depth.get((mode, JobStatus.ON_QUEUE.value), 0),
                "slots": slots,
                "slotsInUse": in_use,
                "windowSeconds": self.window,
            }
        return out

    async def capacity(self) -> dict[str, tuple[int, int, int]]:
        """Per mode, over the operator's accounts: (slots of healthy accounts, slots in
        use there, slots of accounts cooling down)."""
        busy = await self.store.account_busy()
        out: dict[str, tuple[int, int, int]] = {}
        for account in await self.store.live_accounts():
            if account.owner_id is not None:
                continue
            cooling = (account.enabled and not account.deleted
                       and account.state is AccountState.COOLING)
            if not account.usable() and not cooling:
                continue
            for mode, slots in account.slots.items():
                total, used, later = out.get(mode, (0, 0, 0))
                if cooling:
                    out[mode] = (total, used, later + slots)
                else:
                    out[mode] = (total + slots, used + busy.get((account.id, mode), 0), later)
        return out
