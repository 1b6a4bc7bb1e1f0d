"""Fills a gengate database with stored jobs, fast: rows cloned from real jobs and written
straight into the tables in bulk (``executemany`` on SQLite, ``COPY`` on PostgreSQL), with
their ledger rows and the users' balances to match.

The history runs backwards from now at a steady rate (``per_day`` jobs a day), so a larger
store is a deployment that has run longer: the last hours look the same at every size, and
what grows is the history behind them. Used by ``bench/filled.py``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

#: share of stored jobs per product (the rest of a product's settings come from its template)
PRODUCTS = (("midjourney", 0.55), ("flux", 0.15), ("gpt_image", 0.12), ("suno", 0.10),
            ("gemini_image", 0.05), ("sora", 0.03))
#: share of finished jobs that failed
FAILED_SHARE = 0.06
#: failure messages, as the engine writes them
FAILURES = ("Job Timeout", "[Upstream failed] the upstream task failed",
            "[Banned prompt detected] the prompt holds a banned word",
            "No available accounts for fast mode: every account that could run this job is "
            "disabled or needs attention")
#: share of the jobs that belong to the heavy user whose paths are measured
HEAVY_SHARE = 0.3
#: live jobs (queued and running), the same at every size: work in flight does not grow
#: with the history
LIVE = 2000
WORDS = ("a lighthouse at sunset over the sea", "portrait of an old fisherman, film grain",
         "isometric city block at night, neon", "a red fox in the snow --ar 4:5",
         "watercolor of a quiet harbour", "a cute kitten --ar 4:5 --v 6",
         "an energetic edm track about neon cities", "a cathedral made of glass, volumetric")

JOB_COLUMNS = ("id", "user_id", "product", "action", "mode", "status", "progress", "prompt",
               "quota", "timeout", "hook_url", "get_u_images", "parent_id", "params", "result",
               "message", "upstream_id", "provider", "lease_owner", "lease_expires_at",
               "attempts", "deadline", "created_at", "started_at", "finished_at",
               "idempotency_key", "account_id", "slot_mode", "hosted", "result_expired_at",
               "result_claim_owner", "result_claim_until", "submit_tag", "sends", "key_id")
LEDGER_COLUMNS = ("user_id", "job_id", "kind", "amount", "note", "created_at", "key_id")


@dataclass
class Template:
    """One real job's row (a product's shape): cloned with new ids, times and users."""

    row: dict[str, Any]
    weight: float


@dataclass
class Fill:
    """What the filler knows of the database: users, their keys, the templates, the
    oldest time written so far (the history grows backwards from there)."""

    users: list[tuple[int, int | None]]  # (user id, key id)
    heavy: int  # the measured user's id
    templates: list[Template]
    per_day: int
    account_id: int | None
    oldest: float = field(default_factory=time.time)
    stored: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))


def _result(template: dict[str, Any], job_id: str) -> str:
    """The template's result with the job's own file names."""
    raw = template["result"]
    old = template["id"]
    return raw.replace(old, job_id) if isinstance(raw, str) else orjson.dumps(raw).decode()


def rows(fill: Fill, count: int, live: int = 0) -> Iterator[tuple[tuple[Any, ...], list[
        tuple[Any, ...]]]]:
    """``count`` jobs older than everything written so far (the last ``live`` of them
    queued or running, recent), each with its ledger rows."""
    rng = fill.rng
    step = 86_400.0 / fill.per_day
    weights = [t.weight for t in fill.templates]
    now = time.time()
    heavy_key = dict(fill.users)[fill.heavy]
    for n in range(count):
        t = rng.choices(fill.templates, weights)[0].row
        job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if rng.random() < HEAVY_SHARE:
            user_id, key_id = fill.heavy, heavy_key
        else:
            user_id, key_id = fill.users[rng.randrange(len(fill.users))]
        is_live = n < live
        if is_live:
            created = now - rng.uniform(0, 240)
        else:
            fill.oldest -= step * rng.uniform(0.5, 1.5)
            created = fill.oldest
        took = rng.uniform(20, 90)
        quota = int(t["quota"])
        row = dict(t)
        row.update(id=job_id, user_id=user_id, key_id=key_id, created_at=created,
                   deadline=created + int(t["timeout"]), prompt=rng.choice(WORDS),
                   idempotency_key=None, hook_url=None, parent_id=None, lease_owner=None,
                   lease_expires_at=None, submit_tag=None, result_claim_owner=None,
                   result_claim_until=None, result_expired_at=None)
        ledger = [(user_id, job_id, "freeze", quota, "", created, key_id)]
        if is_live:
            queued = n % 2 == 0
            row.update(status="PENDING_QUEUE" if queued else "ON_QUEUE", result="{}",
                       message="", progress=0 if queued else rng.randrange(5, 95),
                       started_at=None if queued else created + 1, finished_at=None,
                       upstream_id=None if queued else f"local-{job_id}",
                       account_id=None if queued else fill.account_id,
                       slot_mode=None if queued else t["mode"],
                       lease_owner=None if queued else "another-worker",
                       lease_expires_at=None if queued else now + 86_400,
                       deadline=now + 86_400 * 30, attempts=0 if queued else 1)
        elif rng.random() < FAILED_SHARE:
            message = rng.choice(FAILURES)
            row.update(status="FAILED", result="{}", message=message, progress=0,
                       started_at=created + 1, finished_at=created + took,
                       upstream_id=None, attempts=1)
            ledger.append((user_id, job_id, "refund", quota, "", created + took, key_id))
        else:
            row.update(status="SUCCESS", result=_result(t, job_id), message="", progress=100,
                       started_at=created + 1, finished_at=created + took,
                       upstream_id=f"local-{job_id}", attempts=1, account_id=fill.account_id)
            ledger.append((user_id, job_id, "settle", quota, "", created + took, key_id))
        yield tuple(row[c] for c in JOB_COLUMNS), ledger


CHUNK = 20_000


def chunks(fill: Fill, count: int, live: int = 0
           ) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """The rows of ``count`` jobs, ``CHUNK`` jobs (and their ledger rows) at a time."""
    jobs: list[tuple[Any, ...]] = []
    ledger: list[tuple[Any, ...]] = []
    for job, money in rows(fill, count, live):
        jobs.append(job)
        ledger += money
        if len(jobs) >= CHUNK:
            yield jobs, ledger
            jobs, ledger = [], []
    if jobs:
        yield jobs, ledger


def fill_sqlite(path: str, fill: Fill, count: int, live: int = 0) -> None:
    """Write ``count`` jobs into the SQLite database at ``path`` (no server may be
    writing to it meanwhile)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    job_sql = f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES " \
              f"({', '.join('?' * len(JOB_COLUMNS))})"
    ledger_sql = f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS)}) VALUES " \
                 f"({', '.join('?' * len(LEDGER_COLUMNS))})"
    for jobs, ledger in chunks(fill, count, live):
        conn.execute("BEGIN")
        conn.executemany(job_sql, jobs)
        conn.executemany(ledger_sql, ledger)
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    for sql in balance_sql():
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    fill.stored += count


def balance_sql() -> list[str]:
    """The users' balances, frozen quota and in-flight counts, as the ledger and the live
    jobs say (what admission and the engine keep them at)."""
    return ["""
        UPDATE users SET
          balance = (SELECT COALESCE(SUM(CASE kind WHEN 'topup' THEN amount
                                                   WHEN 'freeze' THEN -amount
                                                   WHEN 'refund' THEN amount ELSE 0 END), 0)
                     FROM ledger WHERE ledger.user_id = users.id),
          freeze_balance = (SELECT COALESCE(SUM(CASE kind WHEN 'freeze' THEN amount
                                                          WHEN 'settle' THEN -amount
                                                          WHEN 'refund' THEN -amount
                                                          ELSE 0 END), 0)
                            FROM ledger WHERE ledger.user_id = users.id),
          in_flight = (SELECT COUNT(*) FROM jobs WHERE jobs.user_id = users.id
                       AND jobs.status IN ('PENDING_QUEUE', 'ON_QUEUE'))
    """]


async def fill_postgres(url: str, fill: Fill, count: int, live: int = 0) -> None:
    """Write ``count`` jobs into PostgreSQL with ``COPY``, in one transaction."""
    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    try:
        async with conn.transaction():
            for jobs, ledger in chunks(fill, count, live):
                await conn.copy_records_to_table("jobs", records=jobs, columns=JOB_COLUMNS)
                await conn.copy_records_to_table("ledger", records=ledger,
                                                 columns=LEDGER_COLUMNS)
            for sql in balance_sql():
                await conn.execute(sql)
        # what autovacuum does after a bulk load: the planner's statistics
        await conn.execute("ANALYZE jobs")
        await conn.execute("ANALYZE ledger")
        await conn.execute("ANALYZE users")
    finally:
        await conn.close()
    fill.stored += count


def fill_rows(url: str, fill: Fill, count: int, live: int = 0) -> None:
    if url.startswith("sqlite"):
        fill_sqlite(url.split("///", 1)[1], fill, count, live)
    else:
        asyncio.run(fill_postgres(url, fill, count, live))
