"""Result rows: the retention pass's claims on expired results, and the move of results
from local disk to an object store. Job rows are only updated here, never deleted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, or_, select, true, update

from gengate.jobs import JobStatus
from gengate.store.tables import jobs

__all__ = ["Expiring", "StoredResult", "claim_expiring", "mark_expired", "release_claim",
           "stored_results", "switch_result"]

_SUCCESS = JobStatus.SUCCESS.value


@dataclass(frozen=True, slots=True)
class Expiring:
    job_id: str
    product: str
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredResult:
    job_id: str
    result: dict[str, Any]
    raw: str  # the stored text, for a compare-and-set


def claim_expiring(conn: Connection, cutoffs: dict[str, float | None],
                   default: float | None, owner: str, now: float, lease: float,
                   batch: int) -> list[Expiring]:
    """Claim up to ``batch`` successful jobs whose results ended before their product's
    cutoff (``cutoffs`` by product name, ``default`` for the others; None: kept forever)
    and are neither expired nor claimed by a node whose claim still holds."""
    due = [and_(jobs.c.product == name, jobs.c.finished_at < cutoff)
           for name, cutoff in cutoffs.items() if cutoff is not None]
    if default is not None:
        others = jobs.c.product.not_in(list(cutoffs)) if cutoffs else true()
        due.append(and_(others, jobs.c.finished_at < default))
    if not due:
        return []
    query = (select(jobs.c.id, jobs.c.product, jobs.c.result)
             .where(jobs.c.status == _SUCCESS, jobs.c.result_expired_at.is_(None),
                    or_(jobs.c.result_claim_until.is_(None), jobs.c.result_claim_until < now),
                    or_(*due))
             .order_by(jobs.c.finished_at).limit(batch))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if rows:
        conn.execute(update(jobs).where(jobs.c.id.in_([r.id for r in rows]))
                     .values(result_claim_owner=owner, result_claim_until=now + lease))
    return [Expiring(r.id, r.product, orjson.loads(r.result)) for r in rows]


def mark_expired(conn: Connection, job_id: str, owner: str, result: dict[str, Any],
                 now: float) -> bool:
    """Record that ``owner`` deleted the job's files; False if its claim was taken over."""
    done = conn.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.result_claim_owner == owner,
                           jobs.c.result_expired_at.is_(None))
        .values(result=orjson.dumps(result).decode(), result_expired_at=now,
                result_claim_owner=None, result_claim_until=None))
    return bool(done.rowcount)


def release_claim(conn: Connection, job_id: str, owner: str) -> None:
    """Give a claim back (its files could not be deleted now); the next pass retries."""
    conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.result_claim_owner == owner)
                 .values(result_claim_owner=None, result_claim_until=None))


def stored_results(conn: Connection, after: str, limit: int) -> list[StoredResult]:
    """Successful, unexpired jobs by id after ``after``: the move's pages."""
    rows = conn.execute(
        select(jobs.c.id, jobs.c.result)
        .where(jobs.c.status == _SUCCESS, jobs.c.result_expired_at.is_(None),
               jobs.c.id > after)
        .order_by(jobs.c.id).limit(limit)).all()
    return [StoredResult(r.id, orjson.loads(r.result), r.result) for r in rows]


def switch_result(conn: Connection, job_id: str, raw: str, result: dict[str, Any]) -> bool:
    """Replace a job's result if it is still ``raw``; False if it changed meanwhile."""
    done = conn.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.result == raw,
                           jobs.c.result_expired_at.is_(None))
        .values(result=orjson.dumps(result).decode()))
    return bool(done.rowcount)
