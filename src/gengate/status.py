"""What the status endpoints tell: per product and per mode, from the jobs that really ran
recently and the upstream accounts that serve them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gengate.accounts import Account, AccountState
from gengate.clock import Clock
from gengate.jobs import JobStatus, Mode
from gengate.products.registry import Registry, builtin
from gengate.store import Store

__all__ = ["Snapshot", "StatusService"]

#: below this share of successes among recent finished jobs, a line is reported degraded
HEALTHY_SUCCESS_RATE = 0.8
#: days of history on the status page
HISTORY_DAYS = 90
DAY = 86_400


class StatusService:
    def __init__(self, store: Store, clock: Clock, window: int,
                 products: Registry | None = None):
        self.store = store
        self.clock = clock
        self.window = window
        self.products = products if products is not None else builtin()

    async def snapshot(self) -> Snapshot:
        """What every line is made of, read once: a page that shows many lines passes it
        to :meth:`modes` and :meth:`products_status` instead of reading it again."""
        lines = await self._lines()
        busy = await self.store.account_busy()
        return Snapshot(lines, await self.store.live_accounts(), busy)

    async def modes(self, product: str = "midjourney",
                    snapshot: Snapshot | None = None) -> dict[str, dict[str, Any]]:
        """``/midjourney/status``: status, runningMessage and averageExecute per mode of
        ``product``'s lanes."""
        lanes = self.products.get(product).lanes if product in self.products else tuple(Mode)
        snap = snapshot or await self.snapshot()
        capacity = _capacity(product, snap.accounts, snap.busy)
        return {lane.value: self._line(snap.lines.get((product, lane.value), _Counts()),
                                       capacity.get(lane.value, (0, 0, 0)))
                for lane in lanes}

    async def products_status(self, snapshot: Snapshot | None = None,
                              ) -> dict[str, dict[str, Any]]:
        """One line per product (``/status.json``, the status page, ``/metrics``): every
        lane of it together, so an operator sees one product failing while others work."""
        snap = snapshot or await self.snapshot()
        out: dict[str, dict[str, Any]] = {}
        for product in self.products:
            counts = _Counts()
            for (name, _), entry in snap.lines.items():
                if name == product.name:
                    counts.add(entry)
            capacity = _capacity(product.name, snap.accounts, snap.busy)
            slots = tuple(sum(c[i] for m, c in capacity.items()
                              if m in {lane.value for lane in product.lanes}) for i in range(3))
            line = self._line(counts, (slots[0], slots[1], slots[2]))
            line["title"] = product.title
            out[product.name] = line
        return out

    async def history(self, days: int = HISTORY_DAYS) -> dict[str, list[dict[str, Any]]]:
        """Per product, one entry per UTC day of the last ``days`` (oldest first), from
        the jobs that finished: availability (the share that succeeded; ``None`` on a day
        without traffic) and the mean seconds a successful job took."""
        today = int(self.clock.now() // DAY)
        first = today - days + 1
        rows = await self.store.daily_history(first * DAY, self.clock.now())
        counts: dict[tuple[str, int], list[float]] = {}
        for row in rows:
            entry = counts.setdefault((row.product, int(row.day)), [0, 0, 0.0])
            if row.status == JobStatus.SUCCESS.value:
                entry[0], entry[2] = row.n, float(row.avg or 0.0)
            else:
                entry[1] = row.n
        out: dict[str, list[dict[str, Any]]] = {}
        for product in self.products:
            days_out = []
            for day in range(first, today + 1):
                ok, failed, avg = counts.get((product.name, day), [0, 0, 0.0])
                total = ok + failed
                days_out.append({
                    "date": time.strftime("%Y-%m-%d", time.gmtime(day * DAY)),
                    "finished": int(total),
                    "availability": round(ok / total, 4) if total else None,
                    "averageSeconds": round(avg, 2) if ok else None,
                })
            out[product.name] = days_out
        return out

    # -- figures for /metrics and /healthz -----------------------------------------------
    async def live_jobs(self) -> list[Any]:
        """Live jobs counted by product, mode and status (also the database's health)."""
        return await self.store.queue_depth()

    async def webhook_counts(self) -> dict[str, int]:
        return await self.store.webhook_counts()

    async def accounts(self) -> tuple[list[Account], dict[tuple[int, str], int]]:
        """Every live account and its slots in use."""
        return await self.store.live_accounts(), await self.store.account_busy()

    async def _lines(self) -> dict[tuple[str, str], _Counts]:
        since = self.clock.now() - self.window
        lines: dict[tuple[str, str], _Counts] = {}
        for row in await self.store.mode_stats(since):
            entry = lines.setdefault((row.product, row.mode), _Counts())
            if row.status == JobStatus.SUCCESS.value:
                entry.ok, entry.avg = row.n, row.avg
            else:
                entry.failed = row.n
        for row in await self.store.queue_depth():
            entry = lines.setdefault((row.product, row.mode), _Counts())
            if row.status == JobStatus.PENDING_QUEUE.value:
                entry.queued = row.n
            else:
                entry.running = row.n
        return lines

    def _line(self, entry: _Counts, capacity: tuple[int, int, int]) -> dict[str, Any]:
        finished = entry.ok + entry.failed
        rate = entry.ok / finished if finished else None
        degraded = rate is not None and rate < HEALTHY_SUCCESS_RATE
        slots, in_use, cooling = capacity
        status, message = 200, "Endpoints running"
        if not slots and cooling:
            status, message = 500, "Degraded: upstream accounts are cooling down"
        elif not slots:
            status, message = 503, "Unavailable: no healthy upstream account serves this mode"
        elif degraded:
            status, message = 500, "Degraded: many recent jobs failed"
        return {
            "status": status,
            "runningMessage": message,
            "averageExecute": round(entry.avg, 2) if entry.avg is not None else 0,
            "successRate": round(rate, 4) if rate is not None else None,
            "finished": finished,
            "queued": entry.queued,
            "running": entry.running,
            "slots": slots,
            "slotsInUse": in_use,
            "windowSeconds": self.window,
        }

    async def capacity(self, product: str = "midjourney") -> dict[str, tuple[int, int, int]]:
        """Per mode, over the operator's accounts that run ``product``: (slots of healthy
        accounts, slots in use there, slots of accounts cooling down)."""
        busy = await self.store.account_busy()
        return _capacity(product, await self.store.live_accounts(), busy)


def _capacity(product: str, accounts: list[Account],
              busy: dict[tuple[int, str], int]) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    for account in accounts:
        if account.owner_id is not None or not account.serves(product):
            continue
        _add_capacity(out, account, busy)
    return out


def _add_capacity(out: dict[str, tuple[int, int, int]], account: Account,
                  busy: dict[tuple[int, str], int]) -> None:
    cooling = account.enabled and not account.deleted and account.state is AccountState.COOLING
    if not account.usable() and not cooling:
        return
    for mode, slots in account.slots.items():
        total, used, later = out.get(mode, (0, 0, 0))
        if cooling:
            out[mode] = (total, used, later + slots)
        else:
            out[mode] = (total + slots, used + busy.get((account.id, mode), 0), later)


@dataclass(slots=True)
class Snapshot:
    """The status lines' sources: finished and live jobs per (product, mode), the
    accounts, and their slots in use."""

    lines: dict[tuple[str, str], _Counts]
    accounts: list[Account]
    busy: dict[tuple[int, str], int]


class _Counts:
    """One line's figures: finished in the window (and their mean time), live now."""

    __slots__ = ("avg", "failed", "ok", "queued", "running")

    def __init__(self) -> None:
        self.ok = self.failed = self.queued = self.running = 0
        self.avg: float | None = None

    def add(self, other: _Counts) -> None:
        if other.avg is not None:
            total = (self.avg or 0.0) * self.ok + other.avg * other.ok
            self.avg = total / (self.ok + other.ok) if self.ok + other.ok else None
        self.ok += other.ok
        self.failed += other.failed
        self.queued += other.queued
        self.running += other.running
