"""The SQLite database's background checkpoints: closing waits for a checkpoint in
progress (its thread must not find its connection closed under it), and the write-ahead
log stays bounded under a write load that never pauses; the stamp that tells whether a job
row may have changed. And the PostgreSQL pool sizes and stamp."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection

from gengate.config import Settings
from gengate.store import database
from gengate.store.database import Database

ROWS = 256
BLOB = 4096


def _create(conn: Connection) -> None:
    conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
    conn.exec_driver_sql(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                         f"WHERE i < {ROWS}) INSERT INTO t SELECT i, randomblob({BLOB}) FROM n")


def _rewrite(conn: Connection, first: int, count: int) -> None:
    conn.exec_driver_sql(f"UPDATE t SET b = randomblob({BLOB}) "
                         f"WHERE id >= {first} AND id < {first + count}")


def _count(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())


def _wal_size(path: Path) -> int:
    try:
        return os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        return 0


async def test_close_waits_for_the_checkpoint_in_progress(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "WAL_CHECK_EVERY", 0.005)
    monkeypatch.setattr(database, "CHECKPOINT_EVERY", 0.0)
    for attempt in range(10):
        path = tmp_path / f"close-{attempt}.db"
        db = Database(f"sqlite:///{path}")
        await db.run(_create)
        for first in range(1, ROWS, 32):  # several MB of log for the checkpoint to copy
            await db.run(_rewrite, first, 32)
        db.start_maintenance()
        async with asyncio.timeout(10):
            while not db.checkpointing:
                await asyncio.sleep(0.001)
        await db.close()  # before the fix: the connection closed under the thread (crash)
        assert not db.checkpointing
        again = Database(f"sqlite:///{path}")
        try:
            assert await again.read(_count) == ROWS
        finally:
            await again.close()


@pytest.mark.timeout(60)
async def test_the_wal_stays_bounded_under_sustained_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = 1024 * 1024
    monkeypatch.setattr(database, "WAL_TRUNCATE_AT", limit)
    monkeypatch.setattr(database, "JOURNAL_SIZE_LIMIT", limit)
    monkeypatch.setattr(database, "WAL_CHECK_EVERY", 0.02)
    path = tmp_path / "load.db"
    db = Database(f"sqlite:///{path}")
    try:
        await db.run(_create)
        db.start_maintenance()
        written, largest, first = 0, 0, 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60  # a loaded machine writes slowly
        # 48 MiB of page writes, without a pause: an unbounded log would end near that size
        while written < 48 * limit and loop.time() < deadline:
            await db.run(_rewrite, first, 32)
            first = first % ROWS + 32
            written += 32 * BLOB
            largest = max(largest, _wal_size(path))
            await asyncio.sleep(0)  # other requests (and the checkpoint's wake-ups) run
        assert written >= 16 * limit, "the load was too short to show anything"
        # an unbounded log ends near what was written; the bounded one stays far below it
        # (how far depends on what the checkpoint thread got of a core: 12.0 MiB of 48 was
        # seen on a loaded machine, a few MiB on a quiet one)
        assert largest < written / 2, (
            f"the WAL reached {largest / limit:.1f} MiB of {written / limit:.0f} written")
        assert db.wal_truncations > 0
        assert await db.read(_count) == ROWS
    finally:
        await db.close()


async def test_the_jobs_stamp_moves_with_every_writer_but_admissions(tmp_path: Path) -> None:
    path = tmp_path / "stamp.db"
    db = Database(f"sqlite:///{path}")
    try:
        await db.run(_create)
        first = db.jobs_stamp()
        assert first is not None and db.jobs_stamp() == first  # reads change nothing
        await db.run(_rewrite, 1, 1, only_adds_jobs=True)  # an admission: adds, changes none
        assert db.jobs_stamp() == first
        await db.run(_rewrite, 1, 1)
        second = db.jobs_stamp()
        assert second != first
        with pytest.raises(ZeroDivisionError):  # a failed transaction may have written
            await db.run(lambda conn: 1 / 0)
        third = db.jobs_stamp()
        assert third != second
        other = sqlite3.connect(path, isolation_level=None)  # another process's commit
        try:
            other.execute("UPDATE t SET b = x'00' WHERE id = 2")
        finally:
            other.close()
        assert db.jobs_stamp() != third
    finally:
        await db.close()


@pytest.mark.postgres
async def test_postgres_has_no_jobs_stamp(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        assert db.jobs_stamp() is None  # other nodes write unseen: every read is a read
    finally:
        await db.close()


def test_pool_sizes_by_role_and_by_setting() -> None:
    settings = Settings()
    assert settings.pool_sizes(api=True, worker=True) == (5, 5)
    assert settings.pool_sizes(api=True, worker=False) == (5, 5)
    assert settings.pool_sizes(api=False, worker=True) == (3, 3)
    assert settings.pool_sizes(api=False, worker=False) == (1, 1)
    custom = Settings(db_pool_size=3, db_max_overflow=0)
    assert custom.pool_sizes(api=True, worker=True) == (3, 0)


@pytest.mark.postgres
async def test_a_postgres_pool_never_opens_more_than_its_size(pg_url: str) -> None:
    db = Database(pg_url, pool_size=2, max_overflow=1)

    async def hold(release: asyncio.Event) -> None:
        async with db._async.connect() as conn:  # type: ignore[union-attr]
            await conn.exec_driver_sql("SELECT 1")
            await release.wait()

    release = asyncio.Event()
    try:
        holders = [asyncio.create_task(hold(release)) for _ in range(5)]
        async with asyncio.timeout(10):
            while db._async.pool.checkedout() < 3:  # type: ignore[union-attr]
                await asyncio.sleep(0.01)
        assert db._async.pool.checkedout() == 3  # type: ignore[union-attr]
        release.set()
        await asyncio.gather(*holders)
    finally:
        await db.close()


async def test_a_slow_read_leaves_the_event_loop_and_the_writer_free(tmp_path: Path) -> None:
    """A scan of many rows (the status page's days) runs in a thread on a connection of
    its own: while it is held up, this loop still commits writes on the main connection;
    it reads one snapshot; close waits for it."""
    import threading

    db = Database(f"sqlite:///{tmp_path / 'slow.db'}")
    await db.run(_create)
    started, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def scan(conn: Connection) -> tuple[int, int]:
        first = _count(conn)
        started.set()
        # on the event loop this would hold it: the write below could never run
        assert release.wait(30), "the loop did not go on while the read ran"
        seen.append(threading.get_ident())
        return first, _count(conn)

    reading = asyncio.ensure_future(db.read_slow(scan))
    while not started.is_set():
        await asyncio.sleep(0.01)
    await db.run(lambda conn: conn.exec_driver_sql(
        "INSERT INTO t (id, b) VALUES (100000, x'00')"))
    assert await db.read(_count) == ROWS + 1
    release.set()
    # one snapshot: the row written meanwhile is not in it
    assert await reading == (ROWS, ROWS)
    assert seen and seen[0] != threading.get_ident()
    # close waits for a slow read still running
    started.clear()
    release.clear()
    reading = asyncio.ensure_future(db.read_slow(scan))
    while not started.is_set():
        await asyncio.sleep(0.01)
    closing = asyncio.ensure_future(db.close())
    for _ in range(20):  # closing has nothing else to wait for
        await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    await closing
    assert (await reading)[0] == ROWS + 1
