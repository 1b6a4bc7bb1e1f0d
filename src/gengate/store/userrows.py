"""User and ledger rows (API keys: ``keyrows``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from gengate.errors import Conflict, NotFound
from gengate.quota import MAX_MILLI, MAX_QUOTA, LedgerKind
from gengate.store.tables import ledger, users


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    balance: int
    freeze_balance: int
    max_queue: int
    in_flight: int
    active: bool
    created_at: float
    rate_per_second: int | None = None
    rate_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    job_id: str | None
    kind: str
    amount: int
    note: str
    created_at: float
    #: the API key behind the movement (``None``: a top-up, or from before keys were recorded)
    key_id: int | None = None


def _user(row: Any) -> User:
    return User(
        id=row.id, email=row.email, balance=row.balance, freeze_balance=row.freeze_balance,
        max_queue=row.max_queue, in_flight=row.in_flight, active=bool(row.active),
        created_at=row.created_at, rate_per_second=getattr(row, "rate_per_second", None),
        rate_per_minute=getattr(row, "rate_per_minute", None),
    )


def create_user(conn: Connection, email: str, balance: int, max_queue: int, now: float) -> User:
    if conn.execute(select(users.c.id).where(users.c.email == email)).first() is not None:
        raise Conflict(f"email: a user with email {email} already exists")
    row = conn.execute(
        users.insert()
        .values(email=email, balance=0, freeze_balance=0, max_queue=max_queue, in_flight=0,
                active=True, created_at=now)
        .returning(*users.c)
    ).first()
    assert row is not None
    if balance:
        topup(conn, row.id, balance, now, "initial balance")
    return get_user(conn, row.id)


def get_user(conn: Connection, user_id: int) -> User:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return _user(row)


def find_user_by_email(conn: Connection, email: str) -> User | None:
    row = conn.execute(select(users).where(users.c.email == email)).first()
    return _user(row) if row is not None else None


def list_users(conn: Connection) -> list[User]:
    return [_user(r) for r in conn.execute(select(users).order_by(users.c.id))]


def topup(conn: Connection, user_id: int, amount: int, now: float, note: str = "") -> User:
    """Add (or, negative, remove) available quota, with its ledger row."""
    user = get_user(conn, user_id)
    if user.balance + amount < 0:
        raise Conflict("amount: would make the balance negative")
    if user.balance + amount > MAX_MILLI:
        raise Conflict(f"amount: would make the balance larger than {MAX_QUOTA}")
    conn.execute(ledger.insert(), [{
        "user_id": user_id, "job_id": None, "kind": LedgerKind.TOPUP.value, "amount": amount,
        "note": note, "created_at": now,
    }])
    conn.execute(update(users).where(users.c.id == user_id)
                 .values(balance=users.c.balance + amount))
    return get_user(conn, user_id)


def update_user(conn: Connection, user_id: int, values: dict[str, Any]) -> User:
    get_user(conn, user_id)
    if values:
        conn.execute(update(users).where(users.c.id == user_id).values(**values))
    return get_user(conn, user_id)


def ledger_of(conn: Connection, user_id: int, limit: int, offset: int) -> list[LedgerEntry]:
    stmt = (
        select(ledger)
        .where(ledger.c.user_id == user_id)
        .order_by(ledger.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [
        LedgerEntry(r.id, r.job_id, r.kind, r.amount, r.note, r.created_at, r.key_id)
        for r in conn.execute(stmt)
    ]


def ledger_totals(conn: Connection, user_id: int) -> dict[str, int]:
    stmt = (
        select(ledger.c.kind, func.coalesce(func.sum(ledger.c.amount), 0))
        .where(ledger.c.user_id == user_id)
        .group_by(ledger.c.kind)
    )
    totals = {k.value: 0 for k in LedgerKind}
    totals.update({kind: int(total) for kind, total in conn.execute(stmt)})
    return totals
