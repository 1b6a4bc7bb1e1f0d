"""Rows the console needs beyond the API's: sign-in passwords, the operator's views across
users (jobs, webhook deliveries), incidents and the status page's daily history (kept
per day in ``job_days`` once a day's jobs have all ended, so that 90 days cost the same
at any number of stored jobs)."""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Integer, cast, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gengate.errors import Conflict, NotFound
from gengate.jobs import TIMEOUTS, Job, JobStatus
from gengate.store.jobrows import row_to_job
from gengate.store.tables import (
    incident_updates,
    incidents,
    job_days,
    jobs,
    ledger,
    signin_attempts,
    users,
    webhook_deliveries,
)
from gengate.store.userrows import User, _user

DAY = 86_400


# -- passwords ------------------------------------------------------------------------------
def set_password(conn: Connection, user_id: int, password_hash: str | None) -> None:
    result = conn.execute(update(users).where(users.c.id == user_id)
                          .values(password_hash=password_hash))
    if result.rowcount != 1:
        raise NotFound(f"user {user_id} not found")


def password_of(conn: Connection, email: str) -> tuple[User, str | None] | None:
    """The user with ``email`` (compared case-insensitively) and his password hash."""
    row = conn.execute(select(users).where(func.lower(users.c.email) == email.lower())).first()
    return None if row is None else (_user(row), row.password_hash)


# -- the operator's views -------------------------------------------------------------------
def all_jobs(conn: Connection, user_id: int | None, product: str | None, status: str | None,
             limit: int) -> list[Job]:
    stmt = select(jobs)
    if user_id is not None:
        stmt = stmt.where(jobs.c.user_id == user_id)
    if product:
        stmt = stmt.where(jobs.c.product == product)
    if status:
        stmt = stmt.where(jobs.c.status == status)
    stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
    return [row_to_job(r) for r in conn.execute(stmt)]


def all_deliveries(conn: Connection, status: str | None, limit: int) -> list[dict[str, Any]]:
    d = webhook_deliveries
    stmt = select(d.c.id, d.c.job_id, d.c.user_id, d.c.event, d.c.url, d.c.status,
                  d.c.attempts, d.c.last_status, d.c.last_error, d.c.created_at)
    if status:
        stmt = stmt.where(d.c.status == status)
    rows = conn.execute(stmt.order_by(d.c.created_at.desc(), d.c.id).limit(limit))
    return [{"deliveryId": r.id, "jobId": r.job_id, "userId": r.user_id, "event": r.event,
             "url": r.url, "status": r.status, "attempts": r.attempts,
             "lastStatus": r.last_status, "lastError": r.last_error,
             "createdAt": r.created_at} for r in rows]


def all_ledger(conn: Connection, filters: dict[str, Any], limit: int,
               offset: int) -> tuple[list[dict[str, Any]], dict[str, int], int]:
    """Ledger rows across users, newest first, with ``filters`` (``user_id``, ``kind``,
    ``job_id``, ``since`` and ``until`` epoch seconds): a page of rows (with each user's
    email), the filtered totals per kind (milli-quota) and how many rows match."""
    stmt = select(ledger.c.id, ledger.c.user_id, users.c.email, ledger.c.job_id,
                  ledger.c.kind, ledger.c.amount, ledger.c.note, ledger.c.created_at,
                  ledger.c.key_id).join(users, users.c.id == ledger.c.user_id)
    where = []
    if filters.get("user_id") is not None:
        where.append(ledger.c.user_id == filters["user_id"])
    if filters.get("kind"):
        where.append(ledger.c.kind == filters["kind"])
    if filters.get("job_id"):
        where.append(ledger.c.job_id == filters["job_id"])
    if filters.get("since") is not None:
        where.append(ledger.c.created_at >= filters["since"])
    if filters.get("until") is not None:
        where.append(ledger.c.created_at < filters["until"])
    rows = conn.execute(stmt.where(*where).order_by(ledger.c.id.desc())
                        .limit(limit).offset(offset))
    entries = [dict(r._mapping) for r in rows]
    totals_stmt = (select(ledger.c.kind, func.coalesce(func.sum(ledger.c.amount), 0),
                          func.count()).where(*where).group_by(ledger.c.kind))
    totals: dict[str, int] = {}
    count = 0
    for kind, total, n in conn.execute(totals_stmt):
        totals[kind] = int(total)
        count += int(n)
    return entries, totals, count


# -- sign-in attempts -----------------------------------------------------------------------
def signin_attempt(conn: Connection, address: str, now: float, window: float,
                   attempts: int) -> float | None:
    """Count one console sign-in attempt from ``address`` unless it already made
    ``attempts`` in the last ``window`` seconds: then the seconds until the oldest of them
    leaves the window (nothing is counted). One transaction; on PostgreSQL an advisory
    lock per address makes two nodes' attempts count one after the other."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:a))"),
                     {"a": "gengate-signin:" + address})
    t = signin_attempts
    conn.execute(delete(t).where(t.c.at <= now - window))
    seen = [float(at) for (at,) in conn.execute(
        select(t.c.at).where(t.c.address == address).order_by(t.c.at).limit(attempts))]
    if len(seen) >= attempts:
        return max(seen[0] + window - now, 0.0)
    conn.execute(insert(t).values(address=address, at=now))
    return None


# -- incidents ------------------------------------------------------------------------------
def create_incident(conn: Connection, kind: str, title: str, products: list[str], state: str,
                    message: str, now: float) -> int:
    incident_id = int(conn.execute(insert(incidents).values(
        kind=kind, title=title, products=orjson.dumps(products).decode(), state=state,
        created_at=now, resolved_at=None).returning(incidents.c.id)).scalar_one())
    conn.execute(insert(incident_updates).values(incident_id=incident_id, state=state,
                                                 message=message, created_at=now))
    return incident_id


def update_incident(conn: Connection, incident_id: int, state: str, message: str,
                    resolved: bool, now: float) -> None:
    current = conn.execute(select(incidents.c.resolved_at)
                           .where(incidents.c.id == incident_id)).first()
    if current is None:
        raise NotFound(f"incident {incident_id} not found")
    if current.resolved_at is not None:
        raise Conflict(f"incident {incident_id} is already resolved")
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
        state=state, resolved_at=now if resolved else None))
    conn.execute(insert(incident_updates).values(incident_id=incident_id, state=state,
                                                 message=message, created_at=now))


def list_incidents(conn: Connection, since: float, limit: int) -> list[dict[str, Any]]:
    """Incidents still open, and those resolved after ``since``, newest first, each with
    its updates (newest first)."""
    stmt = (select(incidents)
            .where((incidents.c.resolved_at.is_(None)) | (incidents.c.resolved_at >= since))
            .order_by(incidents.c.created_at.desc(), incidents.c.id.desc()).limit(limit))
    rows = list(conn.execute(stmt))
    updates: dict[int, list[dict[str, Any]]] = {r.id: [] for r in rows}
    if rows:
        for u in conn.execute(select(incident_updates)
                              .where(incident_updates.c.incident_id.in_(list(updates)))
                              .order_by(incident_updates.c.created_at.desc(),
                                        incident_updates.c.id.desc())):
            updates[u.incident_id].append({"state": u.state, "message": u.message,
                                           "at": u.created_at})
    return [{"id": r.id, "kind": r.kind, "title": r.title,
             "products": orjson.loads(r.products), "state": r.state,
             "createdAt": r.created_at, "resolvedAt": r.resolved_at, "updates": updates[r.id]}
            for r in rows]


# -- daily history --------------------------------------------------------------------------
#: a day's jobs may still end this long after the day (the longest timeout); a day is
#: written to ``job_days`` only past that and once none of its jobs is live
SETTLE_SECONDS = max(high for _, high in TIMEOUTS.values())
_ENDED = (JobStatus.SUCCESS.value, JobStatus.FAILED.value)
_LIVE = (JobStatus.PENDING_QUEUE.value, JobStatus.ON_QUEUE.value)


class DayRow(NamedTuple):
    """Finished jobs of one product, day (days since the epoch) and status; ``avg``: the
    mean seconds from submit to end."""

    product: str
    day: int
    status: str
    n: int
    avg: float | None


def _day_of(conn: Connection) -> Any:
    if conn.dialect.name == "sqlite":  # CAST truncates: the floor of a positive number
        return cast(jobs.c.created_at / DAY, Integer)
    return cast(func.floor(jobs.c.created_at / DAY), Integer)


def _from_jobs(conn: Connection, first: int, last: int) -> list[tuple[str, int, str, int,
                                                                        float]]:
    """(product, day, status, jobs, seconds) of the finished jobs created on days
    ``first`` to ``last``, read from the jobs themselves."""
    day = _day_of(conn)
    duration = jobs.c.finished_at - jobs.c.created_at
    stmt = (select(jobs.c.product, day.label("day"), jobs.c.status, func.count().label("n"),
                   func.coalesce(func.sum(duration), 0.0).label("seconds"))
            .where(jobs.c.created_at >= first * DAY, jobs.c.created_at < (last + 1) * DAY,
                   jobs.c.status.in_(_ENDED))
            .group_by(jobs.c.product, day, jobs.c.status))
    return [(r.product, int(r.day), r.status, int(r.n), float(r.seconds))
            for r in conn.execute(stmt)]


def _runs(days: list[int]) -> list[tuple[int, int]]:
    """Sorted days as (first, last) runs of consecutive days."""
    runs: list[tuple[int, int]] = []
    for d in days:
        if runs and runs[-1][1] == d - 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def written_days(conn: Connection, first: int, last: int) -> dict[int, list[DayRow]]:
    """The days from ``first`` to ``last`` already in ``job_days``, with their rows."""
    stmt = select(job_days).where(job_days.c.day >= first, job_days.c.day <= last)
    out: dict[int, list[DayRow]] = {}
    for r in conn.execute(stmt):
        rows = out.setdefault(int(r.day), [])
        if r.product:  # not the day's marker
            rows.append(DayRow(r.product, int(r.day), r.status, int(r.jobs),
                               float(r.seconds) / r.jobs if r.jobs else None))
    return out


def count_days(conn: Connection, days: list[int]) -> list[dict[str, Any]]:
    """The ``job_days`` rows of ``days`` (in the past, whose jobs have all ended), each day
    with its marker, counted from the jobs; days with a live job are left out. A read:
    :func:`write_days` stores them."""
    if not days:
        return []
    days = sorted(days)
    day = _day_of(conn)
    live = {int(r.day) for r in conn.execute(
        select(day.label("day")).distinct()
        .where(jobs.c.status.in_(_LIVE), jobs.c.created_at >= days[0] * DAY,
               jobs.c.created_at < (days[-1] + 1) * DAY))}
    ready = [d for d in days if d not in live]
    rows: list[dict[str, Any]] = [{"day": d, "product": "", "status": "", "jobs": 0,
                                   "seconds": 0.0} for d in ready]
    wanted = set(ready)
    for first, last in _runs(ready):
        rows += [{"day": d, "product": p, "status": s, "jobs": n, "seconds": sec}
                 for p, d, s, n, sec in _from_jobs(conn, first, last) if d in wanted]
    return rows


def write_days(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store days counted by :func:`count_days`; a day another node wrote meanwhile is
    left as it is (its jobs had all ended: both counted the same)."""
    if rows:
        insert = (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(job_days)
        conn.execute(insert.on_conflict_do_nothing(), rows)


def open_days(conn: Connection, days: list[int]) -> list[DayRow]:
    """The finished jobs of ``days``, from the jobs (days not in ``job_days``)."""
    wanted = set(days)
    out: list[DayRow] = []
    for first, last in _runs(sorted(days)):
        out += [DayRow(p, d, s, n, sec / n if n else None)
                for p, d, s, n, sec in _from_jobs(conn, first, last) if d in wanted]
    return out


def closed_until(now: float) -> int:
    """The last day whose jobs have all had time to end by ``now``."""
    return int((now - SETTLE_SECONDS) // DAY) - 1
