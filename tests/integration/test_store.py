"""The store on real databases: SQLite and PostgreSQL run the same contract."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gengate.accounts import AccountState, FailureKind
from gengate.errors import InsufficientBalance, QueueFull
from gengate.jobs import Job, JobStatus, Mode
from gengate.store import Admission, Store

from ..conftest import fresh_postgres


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        st = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        await st.migrate()
        yield st
        await st.close()
        return
    async with fresh_postgres(migrated=True) as url:
        st = Store.open(url)
        await st.migrate()
        yield st
        await st.close()


def _job(user_id: int, quota: int = 2000, deadline: float | None = None) -> Job:
    now = time.time()
    return Job(id=str(uuid.uuid4()), user_id=user_id, product="midjourney", action="imagine",
               mode=Mode.FAST, status=JobStatus.PENDING_QUEUE, progress=0, prompt="a cat",
               quota=quota, timeout=300, created_at=now,
               deadline=deadline if deadline is not None else now + 300,
               params={"seed": 1, "aspect": [1, 1], "version": "7"})


async def test_admission_limits_and_idempotency(store: Store) -> None:
    user = await store.create_user("a@example.com", 5000, 2, time.time())
    first = Admission(_job(user.id), "key-1")
    results = await store.admit(
        [first, Admission(_job(user.id), "key-1"), Admission(_job(user.id)),
         Admission(_job(user.id))], time.time())
    assert results[0] == first.job and results[1] == first.job
    assert isinstance(results[2], Job) and isinstance(results[3], QueueFull)
    poor = await store.create_user("b@example.com", 1000, 5, time.time())
    assert isinstance((await store.admit([Admission(_job(poor.id))], time.time()))[0],
                      InsufficientBalance)
    user = await store.get_user(user.id)
    assert (user.balance, user.freeze_balance, user.in_flight) == (1000, 4000, 2)
    again = await store.admit([Admission(_job(user.id), "key-1")], time.time())
    assert again[0] == first.job


RNG = random.Random(7)


async def test_claim_lease_takeover_and_money_once(store: Store) -> None:
    await store.ensure_local_account({"fast": 10}, time.time())
    user = await store.create_user("c@example.com", 10000, 10, time.time())
    jobs = [_job(user.id) for _ in range(3)]
    await store.admit([Admission(j) for j in jobs], time.time())
    now = time.time()
    claimed = (await store.claim("w1", 2, now, 30, RNG)).jobs
    assert [j.id for j in claimed] == [jobs[0].id, jobs[1].id]
    assert all(j.status is JobStatus.ON_QUEUE for j in claimed)
    second = (await store.claim("w2", 5, now, 30, RNG)).jobs
    assert [j.id for j in second] == [jobs[2].id]
    assert await store.record_upstream(jobs[0].id, "w1", "up-1", "local")
    assert not await store.record_upstream(jobs[0].id, "w2", "up-2", "local")
    taken = (await store.claim("w3", 5, now + 31, 30, RNG)).jobs
    assert {j.id for j in taken} == {j.id for j in jobs}
    assert {j.account_id for j in taken} == {claimed[0].account_id}
    resumed = next(j for j in taken if j.id == jobs[0].id)
    assert resumed.upstream_id == "up-1"
    assert await store.renew("w1", [jobs[0].id], now + 100) == set()
    assert await store.succeed(jobs[0].id, "w3", {"kind": "grid"}, now + 32)
    assert not await store.succeed(jobs[0].id, "w3", {"kind": "grid"}, now + 33)
    assert not await store.fail(jobs[0].id, None, "late", now + 34)
    assert await store.fail(jobs[1].id, None, "Job Timeout", now + 35)
    totals = await store.ledger_totals(user.id)
    assert totals == {"topup": 10000, "freeze": 6000, "settle": 2000, "refund": 2000, "overage": 0}
    user = await store.get_user(user.id)
    assert user.balance == 10000 - 6000 + 2000 and user.freeze_balance == 2000
    assert user.in_flight == 1


async def test_a_submit_is_recorded_only_within_the_lease_and_renews_it(store: Store) -> None:
    await store.ensure_local_account({"fast": 10}, time.time())
    user = await store.create_user("fence@example.com", 10000, 10, time.time())
    job = _job(user.id)
    await store.admit([Admission(job)], time.time())
    now = time.time()
    assert [j.id for j in (await store.claim("w1", 1, now, 30, RNG)).jobs] == [job.id]
    # a worker that stalled past its lease sends nothing, though no one has claimed the job
    # yet: the claim that comes next would find no tag and send it again
    assert not await store.mark_submitting(job.id, "w1", f"{job.id}.1", now + 31, 30)
    stored = await store.get_job(job.id)
    assert stored is not None and (stored.submit_tag, stored.sends) == (None, 0)
    # within the lease the record counts the send and gives it a whole lease
    assert await store.mark_submitting(job.id, "w1", f"{job.id}.1", now + 29, 30)
    assert (await store.claim("w2", 1, now + 31, 30, RNG)).jobs == []
    taken = (await store.claim("w2", 1, now + 60, 30, RNG)).jobs
    assert [(j.id, j.submit_tag, j.sends) for j in taken] == [(job.id, f"{job.id}.1", 1)]


async def test_progress_of_many_jobs_is_written_at_once_and_only_rises(store: Store) -> None:
    await store.ensure_local_account({"fast": 10}, time.time())
    user = await store.create_user("p@example.com", 10000, 10, time.time())
    hooked = dataclasses.replace(_job(user.id), hook_url="https://hooks.example.com/a",
                                 params={**_job(user.id).params, "hook_progress": True})
    quiet = dataclasses.replace(_job(user.id), hook_url="https://hooks.example.com/b")
    plain, other = _job(user.id), _job(user.id)
    await store.admit([Admission(j) for j in (hooked, quiet, plain, other)], time.time())
    now = time.time()
    mine = {j.id for j in (await store.claim("w1", 3, now, 30, RNG)).jobs}
    theirs = {j.id for j in (await store.claim("w2", 1, now, 30, RNG)).jobs}
    assert (mine, theirs) == ({hooked.id, quiet.id, plain.id}, {other.id})
    items = [(job_id, 40) for job_id in sorted(mine | theirs)]
    # one call, one transaction: the jobs w1 holds rise, the one w2 holds is not w1's to write
    assert await store.record_progress("w1", items, now) == mine
    # progress only rises: a lower or equal value changes nothing, a higher one does
    assert await store.record_progress("w1", [(hooked.id, 40), (quiet.id, 20), (plain.id, 60)],
                                       now) == {plain.id}
    stored = await store.get_jobs(sorted(mine | theirs))
    assert sorted(j.progress for j in stored.values()) == [0, 40, 40, 60]
    # a progress notification is queued only for the job that asked for one, once per rise
    queued = await store.all_deliveries(None, 100)
    assert [(d["jobId"], d["event"]) for d in queued] == [(hooked.id, "job.progress")]


async def test_overdue_and_illegal_prompt_limit(store: Store) -> None:
    user = await store.create_user("d@example.com", 10000, 10, time.time())
    late, a, b = _job(user.id, deadline=time.time() - 1), _job(user.id), _job(user.id)
    await store.admit([Admission(late), Admission(a), Admission(b)], time.time())
    assert await store.overdue(time.time()) == [late.id]
    assert await store.fail(a.id, None, "[Banned prompt detected] x", time.time(), 1)
    assert await store.fail(b.id, None, "[Banned prompt detected] y", time.time(), 1)
    assert await store.illegal_count(user.id, time.time()) == 2
    totals = await store.ledger_totals(user.id)
    assert totals["refund"] == 2000 and totals["settle"] == 2000


async def _account(store: Store, name: str, slots: dict[str, int], **extra: object) -> int:
    row = await store.create_account({"name": name, "provider": "local", "options": "{}",
                                      "slots": json.dumps(slots), **extra}, time.time())
    return row.account.id


async def test_claims_never_overfill_an_account(store: Store) -> None:
    small = await _account(store, "small", {"fast": 2})
    big = await _account(store, "big", {"fast": 3, "relax": 1})
    user = await store.create_user("e@example.com", 10**7, 100, time.time())
    jobs = [_job(user.id) for _ in range(12)]
    await store.admit([Admission(j) for j in jobs], time.time())
    now = time.time()
    # four workers claim at once: together they may take only the 5 fast slots
    results = await asyncio.gather(*(store.claim(f"w{i}", 10, now, 30, RNG) for i in range(4)))
    taken = [j for r in results for j in r.jobs]
    assert len(taken) == 5 and len({j.id for j in taken}) == 5
    per_account = {a: sum(1 for j in taken if j.account_id == a) for a in (small, big)}
    assert per_account == {small: 2, big: 3}
    assert all(j.slot_mode == "fast" for j in taken)
    assert (await store.claim("w9", 10, now, 30, RNG)).jobs == []
    busy = await store.account_busy()
    assert busy == {(small, "fast"): 2, (big, "fast"): 3}
    # a finished job frees its slot for the next one
    assert await store.succeed(taken[0].id, None, {"kind": "grid"}, now)
    nxt = (await store.claim("w9", 10, now, 30, RNG)).jobs
    assert len(nxt) == 1 and nxt[0].account_id == taken[0].account_id


async def test_account_health_moves_and_is_logged(store: Store) -> None:
    account = await _account(store, "a", {"fast": 1})
    now = time.time()
    change = await store.account_failure(account, FailureKind.RATE_LIMITED, "slow down", 30,
                                         now, 60)
    assert change is not None and change.state is AccountState.COOLING
    assert change.until == now + 30
    assert await store.due_probes(now + 10, 60) == []
    due = await store.due_probes(now + 31, 60)
    assert [r.account.id for r in due] == [account]
    assert await store.due_probes(now + 31, 60) == []  # taken by the first caller
    assert await store.account_ok(account, now + 32, "probe succeeded")
    await store.account_failure(account, FailureKind.CAPTCHA, "", None, now + 40, 60)
    # a flagged account stays flagged by later cooling-class failures
    assert await store.account_failure(account, FailureKind.UNAVAILABLE, "", None,
                                       now + 41, 60) is None
    await store.account_failure(account, FailureKind.BANNED, "gone", None, now + 42, 60)
    row = await store.get_account(account)
    assert row.account.state is AccountState.DISABLED
    events = await store.account_events(account)
    assert [(e["from"], e["to"]) for e in reversed(events)] == [
        ("healthy", "cooling"), ("cooling", "healthy"), ("healthy", "attention"),
        ("attention", "disabled")]
