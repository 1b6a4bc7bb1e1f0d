"""The webhook outbox: one row per notification, written in the job's own transaction,
claimed on leases, logged per attempt."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, and_, delete, func, or_, select, update

from gengate.errors import NotFound
from gengate.jobs import Job
from gengate.store.channels import WEBHOOKS_CHANNEL, notify
from gengate.store.tables import users, webhook_attempts, webhook_deliveries

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    job_id: str
    user_id: int
    event: str
    url: str
    body: bytes
    attempts: int
    secret: str


#: renders a job's fetch body (its product's shape), which is also its webhook body
Bodies = Callable[[Job], dict[str, Any]]


def enqueue(conn: Connection, job: Job, event: str, now: float, bodies: Bodies) -> None:
    """Queue the job's fetch body for its ``hookUrl`` (nothing without one)."""
    if not job.hook_url:
        return
    conn.execute(webhook_deliveries.insert(), [{
        "id": f"msg_{uuid.uuid4().hex}", "job_id": job.id, "user_id": job.user_id,
        "event": event, "url": job.hook_url, "body": orjson.dumps(bodies(job)).decode(),
        "status": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now,
    }])
    notify(conn, WEBHOOKS_CHANNEL)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


#: how a signing secret is kept: Fernet-sealed (see ``gengate.credentials``); a plain
#: ``whsec_`` value is one written before secrets were sealed
PLAIN_PREFIX = "whsec_"


class Sealer(Protocol):
    def seal_text(self, value: str) -> str: ...
    def open_text(self, token: str) -> str: ...


def signing_secret(conn: Connection, user_id: int, box: Sealer, rotate: bool = False) -> str:
    """The user's signing secret (made on first use, or anew with ``rotate``); stored
    sealed with ``box``."""
    row = conn.execute(select(users.c.webhook_secret).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    stored = row.webhook_secret
    if stored and not rotate:
        return str(stored) if stored.startswith(PLAIN_PREFIX) else box.open_text(stored)
    secret = new_secret()
    conn.execute(update(users).where(users.c.id == user_id)
                 .values(webhook_secret=box.seal_text(secret)))
    return secret


def claim(conn: Connection, owner: str, limit: int, now: float, lease: float,
          box: Sealer) -> list[Delivery]:
    due = and_(
        webhook_deliveries.c.status == PENDING,
        webhook_deliveries.c.next_attempt_at <= now,
        or_(webhook_deliveries.c.lease_expires_at.is_(None),
            webhook_deliveries.c.lease_expires_at < now),
    )
    ids = [r.id for r in conn.execute(
        select(webhook_deliveries.c.id).where(due)
        .order_by(webhook_deliveries.c.next_attempt_at).limit(limit)
        .with_for_update(skip_locked=True)
    )]
    if not ids:
        return []
    rows = conn.execute(
        update(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids))
        .values(lease_owner=owner, lease_expires_at=now + lease)
        .returning(*webhook_deliveries.c)
    ).all()
    secrets_by_user = {uid: signing_secret(conn, uid, box) for uid in {r.user_id for r in rows}}
    return [
        Delivery(r.id, r.job_id, r.user_id, r.event, r.url, r.body.encode(), r.attempts,
                 secrets_by_user[r.user_id])
        for r in rows
    ]


def release_owned(conn: Connection, owner: str) -> int:
    """Give back every delivery ``owner`` holds (its previous run died); returns how many."""
    result = conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.lease_owner == owner,
               webhook_deliveries.c.status == PENDING)
        .values(lease_owner=None, lease_expires_at=None)
    )
    return int(result.rowcount)


def record_attempt(conn: Connection, delivery: Delivery, owner: str, started: float,
                   duration_ms: float, status_code: int | None, error: str | None,
                   next_at: float | None, delivered: bool) -> bool:
    """Log one attempt and move the delivery on: delivered, retry at ``next_at``, or failed."""
    status = DELIVERED if delivered else (PENDING if next_at is not None else FAILED)
    count = conn.execute(select(func.count()).where(
        webhook_attempts.c.delivery_id == delivery.id)).scalar_one()
    result = conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery.id,
               webhook_deliveries.c.lease_owner == owner)
        .values(status=status, attempts=webhook_deliveries.c.attempts + 1,
                next_attempt_at=next_at if next_at is not None else started,
                lease_owner=None, lease_expires_at=None, last_status=status_code,
                last_error=error, finished_at=None if status == PENDING else started)
    )
    if result.rowcount != 1:
        return False
    conn.execute(webhook_attempts.insert(), [{
        "delivery_id": delivery.id, "attempt": count + 1, "started_at": started,
        "duration_ms": duration_ms, "status_code": status_code, "error": error,
    }])
    return True


def redeliver(conn: Connection, user_id: int, delivery_id: str, now: float) -> None:
    result = conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.user_id == user_id)
        .values(status=PENDING, attempts=0, next_attempt_at=now, lease_owner=None,
                lease_expires_at=None, finished_at=None)
    )
    if result.rowcount != 1:
        raise NotFound(f"delivery {delivery_id} not found")
    notify(conn, WEBHOOKS_CHANNEL)


def deliveries_of(conn: Connection, user_id: int, job_id: str | None, page: int,
                  limit: int) -> list[dict[str, Any]]:
    stmt = select(webhook_deliveries).where(webhook_deliveries.c.user_id == user_id)
    if job_id:
        stmt = stmt.where(webhook_deliveries.c.job_id == job_id)
    stmt = stmt.order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id)
    rows = conn.execute(stmt.offset((page - 1) * limit).limit(limit)).all()
    attempts: dict[str, list[dict[str, Any]]] = {r.id: [] for r in rows}
    if rows:
        for a in conn.execute(select(webhook_attempts).where(
                webhook_attempts.c.delivery_id.in_(list(attempts)))
                .order_by(webhook_attempts.c.id)):
            attempts[a.delivery_id].append({
                "attempt": a.attempt, "startedAt": a.started_at,
                "durationMs": round(a.duration_ms, 1), "statusCode": a.status_code,
                "error": a.error})
    return [
        {"deliveryId": r.id, "jobId": r.job_id, "event": r.event, "url": r.url,
         "status": r.status, "attempts": attempts[r.id], "nextAttemptAt":
         r.next_attempt_at if r.status == PENDING else None, "createdAt": r.created_at,
         "finishedAt": r.finished_at}
        for r in rows
    ]


def counts(conn: Connection) -> dict[str, int]:
    """Totals for metrics: deliveries by status, and attempts that were retries."""
    out = {PENDING: 0, DELIVERED: 0, FAILED: 0}
    for status, n in conn.execute(select(webhook_deliveries.c.status, func.count())
                                  .group_by(webhook_deliveries.c.status)):
        out[status] = int(n)
    out["retried"] = int(conn.execute(select(func.count()).where(
        webhook_attempts.c.attempt > 1)).scalar_one())
    return out


def purge(conn: Connection, before: float, batch: int = 5000) -> int:
    """Delete finished deliveries (and their attempts) that ended before ``before``; at most
    ``batch`` at a time so that no transaction holds its locks for long."""
    if conn.dialect.name == "postgresql" and not conn.exec_driver_sql(
            "SELECT pg_try_advisory_xact_lock(7243002)").scalar():
        return 0  # another node is purging right now
    ids = [r.id for r in conn.execute(
        select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.status.in_([DELIVERED, FAILED]),
            webhook_deliveries.c.finished_at < before).limit(batch))]
    if ids:
        conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(ids)))
        conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids)))
    return len(ids)


def next_due(conn: Connection) -> float | None:
    value = conn.execute(select(func.min(webhook_deliveries.c.next_attempt_at)).where(
        webhook_deliveries.c.status == PENDING)).scalar()
    return float(value) if value is not None else None
