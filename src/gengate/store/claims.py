"""Claiming jobs: lapsed leases taken over, queued jobs placed on accounts with a free slot,
and jobs sent back to the queue for another account."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, text, update

from gengate.accounts import Account, AccountState, Placement, choose
from gengate.jobs import TIMEOUTS, EngineOptions, Job, JobStatus, Mode
from gengate.store import accountrows
from gengate.store.channels import JOBS_CHANNEL, notify
from gengate.store.jobrows import fail, row_to_job, utc_day
from gengate.store.outbox import Bodies
from gengate.store.tables import RUNNING_SQL, jobs

__all__ = ["Claimed", "claim", "requeue"]


@dataclass(slots=True)
class Claimed:
    """What one claim pass took, and the jobs it had to fail (their parent's account is
    gone, so a pinned follow-up can never run)."""

    jobs: list[Job]
    failed: list[str]


def claim(conn: Connection, owner: str, limit: int, now: float, lease: float,
          rng: random.Random, bodies: Bodies) -> Claimed:
    """Take up to ``limit`` jobs: running ones whose lease lapsed (they keep their account
    and upstream task), then queued ones that an account has a free slot for.

    Slots are counted from the running jobs themselves, with the accounts locked, so two
    workers never put more jobs on an account than it has slots.
    """
    lapsed = [r.id for r in conn.execute(
        select(jobs.c.id)
        .where(text(RUNNING_SQL), jobs.c.lease_expires_at < now, jobs.c.deadline > now)
        .order_by(jobs.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )]
    placed, failed = _place(conn, limit - len(lapsed), now, rng)
    claimed: list[Job] = []
    if lapsed:
        claimed += _take(conn, lapsed, owner, now, lease, {})
    by_slot: dict[tuple[int, str], list[str]] = {}
    for job_id, placement in placed.items():
        by_slot.setdefault((placement.account_id, placement.mode), []).append(job_id)
    for (account_id, mode), ids in by_slot.items():
        claimed += _take(conn, ids, owner, now, lease,
                         {"account_id": account_id, "slot_mode": mode})
    for job_id, message in failed:
        fail(conn, job_id, None, message, now, bodies)
    claimed.sort(key=lambda j: j.created_at)
    return Claimed(claimed, [job_id for job_id, _ in failed])


def _take(conn: Connection, ids: list[str], owner: str, now: float, lease: float,
          values: dict[str, Any]) -> list[Job]:
    stmt = (
        update(jobs)
        .where(jobs.c.id.in_(ids))
        .values(
            status=JobStatus.ON_QUEUE.value,
            lease_owner=owner,
            lease_expires_at=now + lease,
            attempts=jobs.c.attempts + 1,
            started_at=func.coalesce(jobs.c.started_at, now),
            **values,
        )
        .returning(*jobs.c)
    )
    taken = [row_to_job(r) for r in conn.execute(stmt)]
    for i, job in enumerate(taken):
        if job.slot_mode and job.slot_mode != job.mode.value:
            # a job moved to a relax slot gets relax's time to finish
            deadline = max(job.deadline, job.created_at + TIMEOUTS[Mode.RELAX][0])
            if deadline != job.deadline:
                conn.execute(update(jobs).where(jobs.c.id == job.id).values(deadline=deadline))
                taken[i] = dataclasses.replace(job, deadline=deadline)
    return taken


#: queued jobs one claim pass looks through for ones an account can take now
SCAN = 500


def _place(conn: Connection, room: int, now: float,
           rng: random.Random) -> tuple[dict[str, Placement], list[tuple[str, str]]]:
    """Queued jobs matched to accounts with a free slot, oldest first.

    Jobs that cannot be placed now do not block younger ones behind them: the pass looks
    through up to :data:`SCAN` of them and skips the rest of a group (pool, mode, pinned
    account) once one of its jobs found no room.
    """
    if room <= 0:
        return {}, []
    waiting = list(conn.execute(
        select(jobs.c.id, jobs.c.user_id, jobs.c.mode, jobs.c.parent_id, jobs.c.hosted,
               jobs.c.params, jobs.c.product)
        .where(jobs.c.status == JobStatus.PENDING_QUEUE.value, jobs.c.deadline > now)
        .order_by(jobs.c.created_at)
        .limit(SCAN)
        .with_for_update(skip_locked=True)
    ))
    if not waiting:
        return {}, []
    owners = {r.user_id if r.hosted else None for r in waiting}
    pool = accountrows.lock_pools(conn, owners)
    by_id = {a.id: a for a in pool}
    busy = accountrows.busy(conn, list(by_id))
    parent_ids = {r.parent_id for r in waiting if r.parent_id}
    parents = {r.id: (r.account_id, r.slot_mode) for r in conn.execute(
        select(jobs.c.id, jobs.c.account_id, jobs.c.slot_mode)
        .where(jobs.c.id.in_(parent_ids)))
    } if parent_ids else {}
    today = utc_day(now)
    placed: dict[str, Placement] = {}
    failed: list[tuple[str, str]] = []
    full: set[tuple[Any, ...]] = set()
    for row in waiting:
        if len(placed) >= room:
            break
        owner = row.user_id if row.hosted else None
        pinned, parent_slot = parents.get(row.parent_id, (None, None)) if row.parent_id \
            else (None, None)
        mode = row.mode
        options = EngineOptions.from_json(orjson.loads(row.params))
        fallback = options.relax_fallback
        if pinned is not None:
            home = by_id.get(pinned)
            if home is None or not home.enabled or home.state in _GONE:
                failed.append((row.id, _gone_message(row.parent_id, home)))
                continue
            if not home.slots.get(mode) and parent_slot and home.slots.get(parent_slot):
                mode = parent_slot  # the parent itself ran in that slot (relax fallback)
            if not home.slots.get(mode):
                failed.append((row.id, f"[Upstream account] the account that made job "
                               f"{row.parent_id} no longer runs {mode} jobs"))
                continue
        elif not _servable(pool, owner, mode, fallback, row.product):
            # nothing that could ever run it is left (all disabled or flagged): waiting
            # for the deadline would only delay the refund
            failed.append((row.id, f"No available accounts for {_what(row.product, mode)}: "
                           "every account that could run this job is disabled or needs "
                           "attention"))
            continue
        avoid = tuple(options.failed_on)
        group = (owner, mode, pinned, fallback, avoid, row.product)
        if group in full:
            continue
        placement = choose(pool, busy, mode=mode, owner_id=owner, pinned=pinned,
                           relax_fallback=fallback, now=now, today=today, rng=rng, avoid=avoid,
                           product=row.product)
        if placement is None:
            full.add(group)
            continue
        placed[row.id] = placement
        key = (placement.account_id, placement.mode)
        busy[key] = busy.get(key, 0) + 1
        account = by_id[placement.account_id]
        accountrows.mark_assigned(conn, account, now, account.next_gap(rng), today)
    return placed, failed


def _servable(pool: list[Account], owner: int | None, mode: str, fallback: bool,
              product: str) -> bool:
    modes = (mode, Mode.RELAX.value) if fallback and mode == Mode.FAST.value else (mode,)
    return any(a.owner_id == owner and a.serves(product) and a.can_serve(m)
               for a in pool for m in modes)


def _what(product: str, mode: str) -> str:
    """How "No available accounts" names what is missing (Midjourney: just the mode)."""
    return f"{mode} mode" if product == "midjourney" else f"{product} ({mode} mode)"


_GONE = (AccountState.ATTENTION, AccountState.DISABLED)


def _gone_message(parent_id: str, account: Account | None) -> str:
    why = "was removed" if account is None else (
        f"is {account.state.value}" if account.enabled else "is disabled")
    return (f"[Upstream account] the account that made job {parent_id} {why}; "
            "follow-up actions can only run there")


def requeue(conn: Connection, job: Job, owner: str, orphan: str | None = None) -> bool:
    """Back to the queue without its account or upstream task: it runs again from the
    start, preferably on another account (its price stays frozen: no second charge).

    ``orphan`` is the tag of a submit to this account whose outcome is unknown: it is kept
    in the job's ``orphans`` (account id, tag) so that a task it may have started there
    is found and cancelled once the job ends."""
    options = EngineOptions.of(job)
    if job.account_id is not None:
        options = dataclasses.replace(
            options, failed_on=sorted({*options.failed_on, job.account_id}))
        if orphan is not None:
            options = dataclasses.replace(
                options, orphans=[*options.orphans, [job.account_id, orphan]])
    params = options.merged_into(job.params)
    stmt = (
        update(jobs)
        .where(jobs.c.id == job.id, jobs.c.lease_owner == owner,
               jobs.c.status == JobStatus.ON_QUEUE.value)
        .values(status=JobStatus.PENDING_QUEUE.value, lease_owner=None, lease_expires_at=None,
                account_id=None, slot_mode=None, upstream_id=None, provider=None,
                submit_tag=None, params=orjson.dumps(params).decode())
    )
    if conn.execute(stmt).rowcount != 1:
        return False
    notify(conn, JOBS_CHANNEL)
    return True
