"""Runs store functions in a transaction, the same way on SQLite and PostgreSQL.

Store functions are plain synchronous functions taking a SQLAlchemy ``Connection``. On
SQLite (the embedded default) they run inline on the event loop's thread: a local WAL
database answers in microseconds, and handing each query to a thread would cost more than
the query. On PostgreSQL they run through the async engine (asyncpg) with ``run_sync``.

SQLite's write-ahead log is checkpointed by a background thread, never by a request: a
PASSIVE checkpoint every second, and, once the log passes :data:`WAL_TRUNCATE_AT`, a
TRUNCATE checkpoint that empties it. A steady stream of writes never leaves a PASSIVE
checkpoint a moment to finish the log (each one ends behind the newest frame), so without
the second step the log grows for as long as the load lasts. While the short TRUNCATE step
runs, writers wait on an asyncio gate (the event loop keeps serving everything else) instead
of blocking the loop on SQLite's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Connection, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

from gengate.background import supervise
from gengate.errors import DatabaseUnavailable

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
    # a log that restarted on its own (a quiet moment) is cut back to this size
    cur.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    cur.close()


#: seconds between background PASSIVE checkpoints of the WAL on SQLite
CHECKPOINT_EVERY = 1.0
#: seconds between looks at the size of the WAL
WAL_CHECK_EVERY = 0.1
#: a WAL this large is checkpointed to its end and truncated to zero bytes (under a load
#: at full speed it grows by tens of MB a second while the checkpoint copies)
WAL_TRUNCATE_AT = 8 * 1024 * 1024
#: ``PRAGMA journal_size_limit``: bytes a WAL is cut back to when it restarts
JOURNAL_SIZE_LIMIT = 8 * 1024 * 1024
#: seconds the checkpoint's connection waits for other connections' locks
CHECKPOINT_BUSY_TIMEOUT = 1.0
#: PostgreSQL connections when the caller does not say (the settings size them by role)
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 5


class Database:
    """One database, opened from a URL (``sqlite:///path`` or ``postgresql://...``)."""

    def __init__(self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE,
                 max_overflow: int = DEFAULT_MAX_OVERFLOW):
        self.url = make_url(url)
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._sync: Engine | None = None
        #: SQLite: the connections of slow reads, one per read, in threads
        self._slow: Engine | None = None
        self._slow_reads: set[asyncio.Future[Any]] = set()
        self._async: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._checkpointer: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        #: cleared while a TRUNCATE checkpoint runs: SQLite writers wait here
        self._writable = asyncio.Event()
        self._writable.set()
        #: a checkpoint thread is running (close waits for it)
        self.checkpointing = False
        #: TRUNCATE checkpoints done (the WAL emptied under load)
        self.wal_truncations = 0
        #: SQLite: write transactions of this process that may have changed existing rows
        #: of jobs (see :meth:`jobs_stamp`)
        self._job_writes = 0
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
        self._async = create_async_engine(url, pool_size=self.pool_size,
                                          max_overflow=self.max_overflow, pool_recycle=1800)
        #: reads need no transaction: no BEGIN and no ROLLBACK round trips
        self._reader = self._async.execution_options(isolation_level="AUTOCOMMIT")

    def _sqlite_conn(self) -> Connection:
        if self._conn is None:
            assert self._sync is not None
            self._conn = self._sync.connect()
        return self._conn

    def start_maintenance(self) -> None:
        """SQLite: checkpoint the WAL in a thread, so the event loop never waits for the
        disk (the connection itself has automatic checkpoints off)."""
        if self.is_sqlite and self._checkpointer is None:
            self._stop.clear()
            self._checkpointer = supervise(self._checkpoint_loop, "gengate-checkpoint")

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in a thread; when cancelled, still wait for the thread to end (it
        cannot be stopped, and it may be using what the caller is about to close)."""
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            while not work.done():
                try:
                    await asyncio.wait([work])
                except asyncio.CancelledError:
                    continue
            raise

    async def _stopped(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _checkpoint_loop(self) -> None:
        path = self.url.database
        if not path or path == ":memory:":
            return
        wal = f"{path}-wal"
        conn = await self._in_thread(_checkpoint_connection, path)
        loop = asyncio.get_running_loop()
        passive_due = loop.time() + CHECKPOINT_EVERY
        try:
            while not await self._stopped(WAL_CHECK_EVERY):
                try:
                    if await self._in_thread(_wal_size, wal) >= WAL_TRUNCATE_AT:
                        await self._truncate(conn)
                    elif loop.time() >= passive_due:
                        passive_due = loop.time() + CHECKPOINT_EVERY
                        await self._checkpoint(conn, "PASSIVE")
                except sqlite3.Error as exc:
                    log.warning("event=checkpoint_failed error=%s", exc)
        finally:
            # every thread call above has ended (_in_thread waits even when cancelled):
            # nothing uses the connection any more
            conn.close()

    async def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> bool:
        """Whether the checkpoint went to the end of the log (it did not if another
        connection kept it busy)."""
        self.checkpointing = True
        try:
            return await self._in_thread(_checkpoint, conn, mode)
        finally:
            self.checkpointing = False

    async def _truncate(self, conn: sqlite3.Connection) -> None:
        """Empty the WAL: a PASSIVE pass copies almost all of it while writes go on, then
        writers wait (asynchronously) for the short rest of the copy and the truncation."""
        await self._checkpoint(conn, "PASSIVE")
        self._writable.clear()
        try:
            if await self._checkpoint(conn, "TRUNCATE"):
                self.wal_truncations += 1
        finally:
            self._writable.set()

    async def run(self, fn: Callable[..., T], *args: Any, only_adds_jobs: bool = False) -> T:
        """Run ``fn(conn, *args)`` in one transaction and return its result.
        ``only_adds_jobs``: the transaction changes no existing row of ``jobs`` (an
        admission: it adds jobs), so it leaves :meth:`jobs_stamp` as it was. A database
        that does not answer for now is :class:`DatabaseUnavailable`."""
        with _unavailable():
            if self.is_sqlite:
                if not self._writable.is_set():
                    await self._writable.wait()
                return self.run_sync(fn, *args, only_adds_jobs=only_adds_jobs)
            assert self._async is not None
            async with self._async.begin() as conn:
                return await conn.run_sync(fn, *args)

    def run_sync(self, fn: Callable[..., T], *args: Any, only_adds_jobs: bool = False) -> T:
        """SQLite only: run ``fn`` now, in a write transaction (``BEGIN IMMEDIATE``)."""
        with self._lock:
            conn = self._sqlite_conn()
            # the transaction's own statements go straight to the driver: through the
            # SQL layer, BEGIN and COMMIT cost four times what SQLite spends on them
            raw = conn.connection.driver_connection
            assert raw is not None
            try:
                raw.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn, *args)
                except BaseException:
                    raw.execute("ROLLBACK")
                    raise
                raw.execute("COMMIT")
                return result
            finally:
                if not only_adds_jobs:
                    self._job_writes += 1

    def jobs_stamp(self) -> tuple[int, int] | None:
        """SQLite: a value that stays the same for as long as no existing row of ``jobs``
        can have changed, in this process (its write transactions, but admissions, are
        counted) or in another one (SQLite's ``data_version``: any other connection's
        commit changes it). A row read under one stamp is still what the database holds
        while the stamp is unchanged. PostgreSQL: None (other nodes write unseen)."""
        if not self.is_sqlite:
            return None
        with self._lock:
            raw = self._sqlite_conn().connection.driver_connection
            assert raw is not None
            version = raw.execute("PRAGMA data_version").fetchone()[0]
            return self._job_writes, int(version)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only ``fn``; on SQLite without taking the write lock."""
        with _unavailable():
            if self.is_sqlite:
                with self._lock:
                    return fn(self._sqlite_conn(), *args)
            assert self._reader is not None
            async with self._reader.connect() as conn:
                return await conn.run_sync(fn, *args)

    async def read_slow(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only ``fn`` that may scan many rows (a count over days of jobs). On
        SQLite :meth:`read` runs on the event loop, where such a scan would stop every
        other request: this one runs in a thread, on a connection of its own, in one read
        transaction (a snapshot; the WAL lets the writer go on meanwhile). PostgreSQL: as
        :meth:`read`."""
        if not self.is_sqlite or self.url.database in (None, "", ":memory:"):
            return await self.read(fn, *args)  # a memory database has one connection
        if self._slow is None:
            self._slow = create_engine(
                self.url.set(drivername="sqlite+pysqlite"), poolclass=NullPool,
                connect_args={"check_same_thread": False, "isolation_level": None})
            event.listen(self._slow, "connect", _sqlite_pragmas)
        engine = self._slow

        def scan() -> T:
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                assert raw is not None
                raw.execute("BEGIN")  # deferred: the snapshot starts at the first read
                try:
                    return fn(conn, *args)
                finally:
                    raw.execute("ROLLBACK")

        work = asyncio.ensure_future(self._in_thread(scan))
        self._slow_reads.add(work)
        work.add_done_callback(self._slow_reads.discard)
        with _unavailable():
            return await work

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
            # the checkpoint thread finishes what it is doing before its connection, and
            # then this one, are closed under it
            self._stop.set()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        if self._slow_reads:  # their threads use the file until they end
            await asyncio.gather(*self._slow_reads, return_exceptions=True)
        if self._slow is not None:
            self._slow.dispose()
            self._slow = None
        if self._conn is not None:
            if self.is_sqlite:
                self._conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            self._conn.close()
            self._conn = None
        if self._sync is not None:
            self._sync.dispose()
        if self._async is not None:
            await self._async.dispose()


def _checkpoint_connection(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=CHECKPOINT_BUSY_TIMEOUT, isolation_level=None,
                           check_same_thread=False)


def _wal_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _checkpoint(conn: sqlite3.Connection, mode: str) -> bool:
    busy, _log, _done = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return not busy


#: what SQLite says when its file is busy or its disk fails (not a wrong statement)
_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o", "unable to open", "database or disk is full")


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Turn a database that does not answer for now into :class:`DatabaseUnavailable`: no
    pooled connection free in time, a connection lost or refused, SQLite's file locked or
    its disk failing. A wrong statement stays the error it is."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except sa_exc.TimeoutError as exc:  # the pool had no connection to give in time
        log.warning("event=database_unavailable error=pool_timeout")
        raise DatabaseUnavailable() from exc
    except sa_exc.DBAPIError as exc:
        sqlite = isinstance(exc.orig, sqlite3.Error)
        transient = (exc.connection_invalidated
                     or isinstance(exc, sa_exc.InterfaceError) and not sqlite
                     or isinstance(exc, sa_exc.OperationalError) and (
                         not sqlite or any(w in str(exc.orig).lower()
                                           for w in _SQLITE_TRANSIENT)))
        if transient:
            log.warning("event=database_unavailable error=%s", type(exc.orig).__name__)
            raise DatabaseUnavailable() from exc
        raise
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        log.warning("event=database_unavailable error=%s", type(exc).__name__)
        raise DatabaseUnavailable() from exc
