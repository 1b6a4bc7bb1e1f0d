"""The console's rows on SQLite and PostgreSQL: passwords, incidents, the operator's views
and the status page's daily history (UTC day buckets)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gengate.errors import Conflict, NotFound
from gengate.jobs import Job, JobStatus, Mode
from gengate.store import Admission, Store, consolerows

from ..conftest import fresh_postgres

DAY = 86_400
#: 2026-11-30 00:00:00 UTC
MIDNIGHT = 1_796_083_200.0


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


async def _finished(store: Store, user_id: int, created: float, seconds: float,
                    ok: bool) -> str:
    job = Job(id=str(uuid.uuid4()), user_id=user_id, product="midjourney",
              action="imagine", mode=Mode.FAST, status=JobStatus.PENDING_QUEUE, progress=0,
              prompt="a cat", quota=1000, timeout=300, created_at=created,
              deadline=created + 300)
    [admitted] = await store.admit([Admission(job)], created)
    assert isinstance(admitted, Job)
    if ok:
        assert await store.succeed(job.id, None, {"cdnImage": "x"}, created + seconds)
    else:
        assert await store.fail(job.id, None, "broke", created + seconds)
    return job.id


async def test_passwords_and_operator_views(store: Store) -> None:
    user = await store.create_user("Mixed@Example.com", 10_000, 5, MIDNIGHT)
    other = await store.create_user("other@example.com", 10_000, 5, MIDNIGHT)
    assert await store.password_of("mixed@example.COM") == (user, None)
    await store.set_password(user.id, "$argon2id$v=19$hash")
    found = await store.password_of("MIXED@example.com")
    assert found is not None and found[1] == "$argon2id$v=19$hash"
    assert await store.password_of("nobody@example.com") is None
    with pytest.raises(NotFound):
        await store.set_password(999, "x")
    mine = await _finished(store, user.id, MIDNIGHT + 10, 5, True)
    theirs = await _finished(store, other.id, MIDNIGHT + 20, 5, False)
    assert [j.id for j in await store.all_jobs(None, None, None, 10)] == [theirs, mine]
    assert [j.id for j in await store.all_jobs(user.id, "midjourney", "SUCCESS", 10)] == [mine]
    assert await store.all_jobs(None, None, "PENDING_QUEUE", 10) == []
    assert await store.all_deliveries(None, 10) == []  # no hookUrl, no delivery


async def test_incidents_keep_their_updates(store: Store) -> None:
    made = await store.create_incident("incident", "Slow", ["midjourney"], "investigating",
                                       "Looking", MIDNIGHT)
    await store.update_incident(made, "resolved", "Fixed", True, MIDNIGHT + 60)
    with pytest.raises(Conflict):
        await store.update_incident(made, "monitoring", "again", False, MIDNIGHT + 70)
    with pytest.raises(NotFound):
        await store.update_incident(made + 1, "monitoring", "x", False, MIDNIGHT)
    [shown] = await store.incidents(MIDNIGHT, 10)
    assert shown["state"] == "resolved" and shown["resolvedAt"] == MIDNIGHT + 60
    assert [u["message"] for u in shown["updates"]] == ["Fixed", "Looking"]
    # resolved before the window: no longer shown; an open one always is
    assert await store.incidents(MIDNIGHT + 61, 10) == []
    still = await store.create_incident("maintenance", "Upgrade", [], "identified", "Soon",
                                        MIDNIGHT - 30 * DAY)
    assert [i["id"] for i in await store.incidents(MIDNIGHT + 61, 10)] == [still]


async def test_daily_history_buckets_by_utc_day(store: Store) -> None:
    user = await store.create_user("a@example.com", 100_000, 50, MIDNIGHT)
    # the last second of one day and the first of the next land on different days
    await _finished(store, user.id, MIDNIGHT - 1, 4, True)
    await _finished(store, user.id, MIDNIGHT, 2, True)
    await _finished(store, user.id, MIDNIGHT + 3600, 6, False)
    await _finished(store, user.id, MIDNIGHT - 10 * DAY, 1, True)  # before the window
    day = int(MIDNIGHT // DAY)
    expected = {("midjourney", day - 1, "SUCCESS"): (1, 4.0),
                ("midjourney", day, "SUCCESS"): (1, 2.0),
                ("midjourney", day, "FAILED"): (1, 6.0)}
    rows = await store.daily_history(MIDNIGHT - DAY, MIDNIGHT + 7200)
    assert _by_day(rows) == expected
    # days later, both days are kept per day and read from there: the same figures
    rows = await store.daily_history(MIDNIGHT - DAY, MIDNIGHT + 3 * DAY)
    assert _by_day(rows) == expected
    assert await store.db.read(consolerows.written_days, day - 1, day + 1) != {}


def _by_day(rows: list[consolerows.DayRow]) -> dict[tuple[str, int, str], tuple[int, float]]:
    return {(r.product, int(r.day), r.status): (r.n, round(float(r.avg or 0), 3)) for r in rows}


async def test_daily_history_keeps_a_day_open_while_one_of_its_jobs_is_live(
        store: Store) -> None:
    user = await store.create_user("b@example.com", 100_000, 50, MIDNIGHT)
    await _finished(store, user.id, MIDNIGHT + 10, 3, True)
    stuck = Job(id=str(uuid.uuid4()), user_id=user.id, product="flux", action="generate",
                mode=Mode.FAST, status=JobStatus.PENDING_QUEUE, progress=0, prompt="a dog",
                quota=1000, timeout=300, created_at=MIDNIGHT + 20, deadline=MIDNIGHT + 320)
    assert isinstance((await store.admit([Admission(stuck)], MIDNIGHT + 20))[0], Job)
    later = MIDNIGHT + 5 * DAY
    day = int(MIDNIGHT // DAY)
    # the day is long over, but a job of it is still queued: it is not written yet
    rows = await store.daily_history(MIDNIGHT, later)
    assert _by_day(rows) == {("midjourney", day, "SUCCESS"): (1, 3.0)}
    written = await store.db.read(consolerows.written_days, day, day + 4)
    assert day not in written and set(written) == {day + 1, day + 2, day + 3}
    # it ends (the reaper fails it): the day is written with it, and stays as it is
    assert await store.fail(stuck.id, None, "Job Timeout", later)
    expected = {("midjourney", day, "SUCCESS"): (1, 3.0),
                ("flux", day, "FAILED"): (1, later - MIDNIGHT - 20)}
    assert _by_day(await store.daily_history(MIDNIGHT, later)) == expected
    assert [r.status for r in (await store.db.read(consolerows.written_days, day, day))[day]
            ] in (["SUCCESS", "FAILED"], ["FAILED", "SUCCESS"])


async def test_sign_in_attempts_prices_and_the_ledger_across_users(store: Store) -> None:
    # ten attempts in the window, then the wait until the oldest leaves it
    for i in range(10):
        assert await store.signin_attempt("203.0.113.9", MIDNIGHT + i, 300, 10) is None
    wait = await store.signin_attempt("203.0.113.9", MIDNIGHT + 20, 300, 10)
    assert wait == pytest.approx(280)
    assert await store.signin_attempt("203.0.113.10", MIDNIGHT + 20, 300, 10) is None
    # past the window the old attempts are gone, and count no more
    assert await store.signin_attempt("203.0.113.9", MIDNIGHT + 301, 300, 10) is None

    version = await store.key_version()
    await store.set_price("main", "flux:*:*", 2500, MIDNIGHT)
    await store.set_price("main", "flux:*:*", 3000, MIDNIGHT + 1)
    await store.set_price("hosting", "midjourney:*:*", 200, MIDNIGHT)
    assert sorted(await store.price_overrides()) == [
        ("hosting", "midjourney:*:*", 200), ("main", "flux:*:*", 3000)]
    assert await store.key_version() == version + 3  # every node reloads
    assert await store.remove_price("main", "flux:*:*") is True
    assert await store.remove_price("main", "flux:*:*") is False
    assert await store.price_overrides() == [("hosting", "midjourney:*:*", 200)]

    ann = await store.create_user("ann@example.com", 5_000, 5, MIDNIGHT)
    bob = await store.create_user("bob@example.com", 7_000, 5, MIDNIGHT + DAY)
    job_id = await _finished(store, ann.id, MIDNIGHT + 10, 3, ok=True)
    entries, totals, count = await store.all_ledger({}, 10, 0)
    # newest first, each row with its user's email
    assert count == 4 and [(e["email"], e["kind"]) for e in entries] == [
        ("ann@example.com", "settle"), ("ann@example.com", "freeze"),
        ("bob@example.com", "topup"), ("ann@example.com", "topup")]
    assert totals == {"topup": 12_000, "freeze": 1000, "settle": 1000}
    only, _, n = await store.all_ledger({"user_id": ann.id, "kind": "settle"}, 10, 0)
    assert n == 1 and only[0]["job_id"] == job_id and only[0]["email"] == "ann@example.com"
    day, _, n = await store.all_ledger({"since": MIDNIGHT + DAY, "until": MIDNIGHT + 2 * DAY},
                                       10, 0)
    assert n == 1 and day[0]["user_id"] == bob.id
    page, _, n = await store.all_ledger({}, 1, 1)
    assert n == 4 and len(page) == 1
