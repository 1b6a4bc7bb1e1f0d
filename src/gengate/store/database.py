"""Runs store functions in a transaction, the same way on SQLite and PostgreSQL.

Store functions are plain synchronous functions taking a SQLAlchemy ``Connection``. On
SQLite (the embedded default) they run inline on the event loop's thread: a local WAL
database answers in microseconds, and handing each query to a thread would cost more than
the query. On PostgreSQL they run through the async engine (asyncpg) with ``run_sync``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

T = TypeVar("T")

log = logging.getLogger("gengate.store")

__all__ = ["Database"]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    # checkpoints (the only writes that wait for the disk) run off the event loop instead
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


#: seconds between background WAL checkpoints on SQLite
CHECKPOINT_EVERY = 1.0


class Database:
    """One database, opened from a URL (``sqlite:///path`` or ``postgresql://...``)."""

    def __init__(self, url: str):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._checkpointer: asyncio.Task[None] | None = None
        if self.is_sqlite:
            self._open_sqlite()
        else:
            self._open_postgres()

    def _open_sqlite(self) -> None:
        url = self.url.set(drivername="sqlite+pysqlite")
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "isolation_level": None},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        self._sync = engine

    def _open_postgres(self) -> None:
        url = self.url.set(drivername="postgresql+asyncpg")
        # no pre-ping: a dead connection surfaces as an error and is replaced, while a ping
        # would cost every request a round trip
        self._async = create_async_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)
        #: reads need no transaction: no BEGIN and no ROLLBACK round trips
        self._reader = self._async.execution_options(isolation_level="AUTOCOMMIT")

    def _sqlite_conn(self) -> Connection:
        if self._conn is None:
            assert self._sync is not None
            self._conn = self._sync.connect()
        return self._conn

    def start_maintenance(self) -> None:
        """SQLite: checkpoint the WAL in a thread every second, so the event loop never
        waits for the disk (the connection itself has automatic checkpoints off)."""
        if self.is_sqlite and self._checkpointer is None:
            self._checkpointer = asyncio.create_task(self._checkpoint_loop())

    async def _checkpoint_loop(self) -> None:
        path = self.url.database
        if not path or path == ":memory:":
            return
        conn = await asyncio.to_thread(sqlite3.connect, path, check_same_thread=False)
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_EVERY)
                try:
                    await asyncio.to_thread(conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("event=checkpoint_failed error=%s", exc)
        finally:
            conn.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction and return its result."""
        if self.is_sqlite:
            return self.run_sync(fn, *args)
        assert self._async is not None
        async with self._async.begin() as conn:
            return await conn.run_sync(fn, *args)

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """SQLite only: run ``fn`` now, in a write transaction (``BEGIN IMMEDIATE``)."""
        with self._lock:
            conn = self._sqlite_conn()
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
            return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only ``fn``; on SQLite without taking the write lock."""
        if self.is_sqlite:
            with self._lock:
                return fn(self._sqlite_conn(), *args)
        assert self._reader is not None
        async with self._reader.connect() as conn:
            return await conn.run_sync(fn, *args)

    async def listen(self, channels: dict[str, Callable[[str | None], None]]) -> None:
        """PostgreSQL: call ``channels[name](payload)`` on each ``NOTIFY name`` (the payload
        is ``None`` once after each (re)connection: anything notified while no one listened
        must be looked for), reconnecting after a lost connection; returns only when
        cancelled. SQLite has nothing to listen to: one process's wake-ups are in-process
        events, and polling covers the rest."""
        if self.is_sqlite:
            return
        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                conn = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("event=listen_connect_failed error=%s", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, ev=lost: ev.set())
            try:
                for name, callback in channels.items():
                    await conn.add_listener(
                        name, lambda _c, _pid, _ch, payload, cb=callback: cb(payload or None))
                for callback in channels.values():
                    callback(None)  # anything notified while we were away: look now
                await lost.wait()
            finally:
                if not conn.is_closed():
                    await conn.close()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        if self._conn is not None:
            if self.is_sqlite:
                self._conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            self._conn.close()
            self._conn = None
        if self._sync is not None:
            self._sync.dispose()
        if self._async is not None:
            await self._async.dispose()
