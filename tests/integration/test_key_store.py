"""API key rows on both databases: the migration keeps every existing key working with no
limits, and a key's spend cap lets concurrent admissions pass exactly the affordable number."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from gengate.errors import GengateError
from gengate.jobs import Job, JobStatus, Mode
from gengate.keys import KeyCapReached, hash_key
from gengate.store import Admission, Store
from gengate.store.llmrows import UsageRow
from gengate.store.migrate import migrate
from tests.conftest import fresh_postgres


@pytest.fixture(params=["sqlite", "postgres"])
async def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store migrated only up to the schema before keys had limits (0006)."""
    if request.param == "sqlite":
        st = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        await migrate(st.db, "0006")
        yield st
        await st.close()
        return
    async with fresh_postgres() as url:
        st = Store.open(url)
        await migrate(st.db, "0006")
        yield st
        await st.close()


def _old_user_and_key(conn: Connection, key_hash: str) -> None:
    conn.execute(text("INSERT INTO users (email, balance, freeze_balance, max_queue, in_flight, "
                      "active, created_at) VALUES ('old@example.com', 10000, 0, 50, 0, true, 1)"))
    conn.execute(text("INSERT INTO api_keys (user_id, key_hash, prefix, created_at) "
                      "SELECT id, :h, 'gg-old00', 1 FROM users"), {"h": key_hash})


def _job(user_id: int, key_id: int | None, quota: int) -> Job:
    now = time.time()
    return Job(id=str(uuid.uuid4()), user_id=user_id, product="midjourney", action="imagine",
               mode=Mode.FAST, status=JobStatus.PENDING_QUEUE, progress=0, prompt="a fox",
               quota=quota, timeout=300, created_at=now, deadline=now + 300, key_id=key_id)


async def test_existing_keys_work_with_no_limits_after_the_migration(old_store: Store) -> None:
    digest = hash_key("gg-an-old-key")
    await old_store.db.run(_old_user_and_key, digest)
    await old_store.migrate()
    found = await old_store.key_by_hash(digest)
    assert found is not None
    user, key = found
    assert user.email == "old@example.com" and key.prefix == "gg-old00"
    assert (key.products, key.models, key.cidrs, key.expires_at, key.caps) == (
        None, None, None, None, {})
    assert (key.rate_per_second, key.rate_per_minute, key.name) == (None, None, "")
    results = await old_store.admit([Admission(_job(user.id, key.id, 2000))], time.time())
    assert isinstance(results[0], Job) and results[0].key_id == key.id
    listed = await old_store.list_keys(user.id, time.time())
    assert listed[0].spent["total"] == 2000


async def test_concurrent_admissions_pass_exactly_the_cap(old_store: Store) -> None:
    await old_store.migrate()
    now = time.time()
    user = await old_store.create_user("capped@example.com", 1_000_000, 1000, now)
    key = await old_store.create_key(user.id, hash_key("gg-capped"), "gg-cappe", now,
                                     {"cap_total": 7000, "cap_day": 9000})
    # 40 admissions of 1000 in 8 concurrent transactions of 5: exactly 7 fit the cap
    batches = [[Admission(_job(user.id, key.id, 1000)) for _ in range(5)] for _ in range(8)]
    outcomes = await asyncio.gather(*[old_store.admit(b, time.time()) for b in batches])
    results: list[Job | GengateError] = [r for batch in outcomes for r in batch]
    assert sum(isinstance(r, Job) for r in results) == 7
    refused = [r for r in results if not isinstance(r, Job)]
    assert all(isinstance(r, KeyCapReached) and "total spend cap (7)" in r.message
               for r in refused)
    shown = await old_store.get_key(user.id, key.id, time.time())
    assert shown.spent == {"total": 7000, "day": 7000, "month": 7000}
    assert (await old_store.get_user(user.id)).freeze_balance == 7000


async def test_an_llm_overage_counts_against_the_key(old_store: Store) -> None:
    # an LLM call that reported more than its hold: the ledger's overage row names the key,
    # and the key's spend counts what the call really cost, past its cap if need be
    await old_store.migrate()
    now = time.time()
    user = await old_store.create_user("over@example.com", 100_000, 10, now)
    key = await old_store.create_key(user.id, hash_key("gg-over"), "gg-over0", now,
                                     {"cap_total": 5000})
    assert await old_store.llm_hold_many([(user.id, "llm_o", 4000, key.id)], now) == [None]
    row = UsageRow("llm_o", user.id, "claude-x", "a1", 10, 5, 0, 0, 6000, "ok", now, 1, key.id)
    assert await old_store.llm_settle_many([(row, 4000)], now) == [6000]
    entries = await old_store.ledger(user.id, 10, 0)
    assert {(e.kind, e.amount, e.key_id) for e in entries} == {
        ("topup", 100_000, None), ("freeze", 4000, key.id), ("settle", 4000, key.id),
        ("overage", 2000, key.id)}
    shown = await old_store.get_key(user.id, key.id, time.time())
    assert shown.spent == {"total": 6000, "day": 6000, "month": 6000}
    refused = await old_store.llm_hold_many([(user.id, "llm_p", 1, key.id)], time.time())
    assert isinstance(refused[0], KeyCapReached)
