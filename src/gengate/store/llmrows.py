"""LLM relay rows: the hold before a call, its settlement after, and per-call usage.

One call moves money in two transactions: :func:`hold` freezes the worst-case price under
the user's row lock (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so concurrent
calls cannot overdraw; :func:`settle` charges the real cost, refunds the rest and writes the
usage row, together. The request id goes in the ledger's ``job_id``, whose unique
``(job_id, kind)`` makes a second settle or refund impossible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from gengate.errors import InsufficientBalance, NotFound
from gengate.quota import LedgerKind
from gengate.store.tables import ledger, llm_usage, users

__all__ = ["UsageRow", "hold", "purge_usage", "settle", "usage_of"]


@dataclass(frozen=True, slots=True)
class UsageRow:
    id: str
    user_id: int
    model: str
    account: str
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost: int
    status: str
    started_at: float
    duration_ms: int


_MOVE = (
    update(users)
    .where(users.c.id == bindparam("uid"))
    .values(balance=users.c.balance + bindparam("to_balance"),
            freeze_balance=users.c.freeze_balance - bindparam("from_freeze"))
)


def _entry(user_id: int, request_id: str, kind: LedgerKind, amount: int,
           now: float) -> dict[str, Any]:
    return {"user_id": user_id, "job_id": request_id, "kind": kind.value, "amount": amount,
            "note": "llm", "created_at": now}


def hold(conn: Connection, user_id: int, request_id: str, amount: int, now: float) -> None:
    """Freeze ``amount`` from the balance, or raise 402 if the balance is short."""
    row = conn.execute(
        select(users.c.balance, users.c.active).where(users.c.id == user_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound("user not found")
    if row.balance < amount or row.balance <= 0:
        raise InsufficientBalance()
    conn.execute(_MOVE, {"uid": user_id, "to_balance": -amount, "from_freeze": -amount})
    conn.execute(ledger.insert(), [_entry(user_id, request_id, LedgerKind.FREEZE, amount, now)])


def settle(conn: Connection, usage: UsageRow, held: int, now: float) -> int:
    """Charge ``usage.cost`` (at most ``held``), refund the rest, record the usage row.

    Returns the amount charged.
    """
    cost = max(0, min(usage.cost, held))
    entries = []
    if cost:
        entries.append(_entry(usage.user_id, usage.id, LedgerKind.SETTLE, cost, now))
    if held - cost:
        entries.append(_entry(usage.user_id, usage.id, LedgerKind.REFUND, held - cost, now))
    if entries:
        conn.execute(ledger.insert(), entries)
    conn.execute(_MOVE, {"uid": usage.user_id, "to_balance": held - cost, "from_freeze": held})
    values = asdict(usage)
    values["cost"] = cost
    conn.execute(llm_usage.insert(), [values])
    return cost


def usage_of(conn: Connection, user_id: int, page: int, limit: int) -> list[UsageRow]:
    """A user's usage rows, newest first."""
    rows = conn.execute(
        select(llm_usage).where(llm_usage.c.user_id == user_id)
        .order_by(llm_usage.c.started_at.desc(), llm_usage.c.id.desc())
        .limit(limit).offset((page - 1) * limit)
    )
    return [UsageRow(**r._mapping) for r in rows]


def purge_usage(conn: Connection, before: float, batch: int = 5000) -> int:
    """Delete up to ``batch`` usage rows that started before ``before``; returns how many."""
    ids = select(llm_usage.c.id).where(llm_usage.c.started_at < before).limit(batch)
    result = conn.execute(delete(llm_usage).where(llm_usage.c.id.in_(ids.scalar_subquery())))
    return int(result.rowcount or 0)
