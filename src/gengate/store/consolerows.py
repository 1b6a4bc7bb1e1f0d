"""Rows the console needs beyond the API's: sign-in passwords, the operator's views across
users (jobs, webhook deliveries), incidents and the status page's daily history."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, Integer, cast, func, insert, select, update

from gengate.errors import Conflict, NotFound
from gengate.jobs import Job, JobStatus
from gengate.store.jobrows import row_to_job
from gengate.store.tables import incident_updates, incidents, jobs, users, webhook_deliveries
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
def daily_history(conn: Connection, since: float) -> list[Any]:
    """Per product and UTC day (days since the epoch) since ``since``: finished jobs that
    succeeded and failed, and the mean seconds from submit to finish of the successes."""
    if conn.dialect.name == "sqlite":  # CAST truncates: the floor of a positive number
        day = cast(jobs.c.created_at / DAY, Integer)
    else:
        day = cast(func.floor(jobs.c.created_at / DAY), Integer)
    duration = jobs.c.finished_at - jobs.c.created_at
    stmt = (select(jobs.c.product, day.label("day"), jobs.c.status, func.count().label("n"),
                   func.avg(duration).label("avg"))
            .where(jobs.c.created_at >= since, jobs.c.status.in_(
                [JobStatus.SUCCESS.value, JobStatus.FAILED.value]))
            .group_by(jobs.c.product, day, jobs.c.status))
    return list(conn.execute(stmt))
