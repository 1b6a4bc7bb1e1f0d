"""LLM relay rows: the hold before a call, its settlement after, and per-call usage.

One call moves money in two transactions: :func:`hold_many` freezes an estimated price
under the users' row locks (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so
concurrent calls cannot overdraw; :func:`settle_many` charges the real cost, refunds the rest
and writes the usage row, together. Calls that start or end together share the
transaction. The request id goes in the ledger's ``job_id``, whose unique
``(job_id, kind)`` makes a second settle or refund impossible.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, select, update

from gengate.errors import GengateError, InsufficientBalance, NotFound
from gengate.quota import LedgerKind
from gengate.store import keyrows
from gengate.store.jobrows import insert_many
from gengate.store.tables import ledger, llm_usage, users

__all__ = ["UsageRow", "hold_many", "money_many", "purge_usage", "settle_many", "usage_of",
           "usage_totals"]


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
    #: the API key that made the call
    key_id: int | None = None


_MOVE = (
    update(users)
    .where(users.c.id == bindparam("uid"))
    .values(balance=users.c.balance + bindparam("to_balance"),
            freeze_balance=users.c.freeze_balance - bindparam("from_freeze"))
)
_RAW_MOVE = ("UPDATE users SET balance = balance + ?, freeze_balance = freeze_balance - ? "
             "WHERE id = ?")
_USAGE_FIELDS = tuple(f.name for f in fields(UsageRow))


def _move(conn: Connection, moves: dict[int, tuple[int, int]]) -> None:
    """Per user: (to balance, out of freeze). Every call does this twice, so on SQLite it
    goes straight to the driver (the expression layer costs more than the update)."""
    if conn.dialect.name == "sqlite":
        conn.connection.driver_connection.executemany(  # type: ignore[union-attr]
            _RAW_MOVE, [(to, out, uid) for uid, (to, out) in moves.items()])
        return
    conn.execute(_MOVE, [{"uid": uid, "to_balance": to, "from_freeze": out}
                         for uid, (to, out) in moves.items()])


def _entry(user_id: int, request_id: str, kind: LedgerKind, amount: int,
           now: float, key_id: int | None) -> dict[str, Any]:
    return {"user_id": user_id, "job_id": request_id, "kind": kind.value, "amount": amount,
            "note": "llm", "created_at": now, "key_id": key_id}


#: one hold: (user id, request id, amount, the API key's id)
Hold = tuple[int, str, int, int | None]


def hold_many(conn: Connection, holds: list[Hold], now: float) -> list[GengateError | None]:
    """Freeze each call's worst-case price, in one transaction, each decided in order against the
    balance the ones before it left (402 when short) and its key's spend caps; returns each
    call's refusal, or None."""
    uids = sorted({uid for uid, _, _, _ in holds})
    if conn.dialect.name == "sqlite":  # the write lock is already held: no FOR UPDATE
        marks = ", ".join("?" * len(uids))
        raw = conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            f"SELECT id, balance FROM users WHERE id IN ({marks})", uids)
        balance = dict(raw.fetchall())
    else:
        rows = conn.execute(select(users.c.id, users.c.balance).where(users.c.id.in_(uids))
                            .order_by(users.c.id).with_for_update())
        balance = {r.id: r.balance for r in rows}
    spend = keyrows.SpendCaps(conn, (kid for _, _, _, kid in holds if kid), now)
    taken: dict[int, int] = {}
    entries: list[dict[str, Any]] = []
    results: list[GengateError | None] = []
    for uid, request_id, amount, key_id in holds:
        left = balance.get(uid)
        if left is None:
            results.append(NotFound("user not found"))
        elif left < amount or left <= 0:
            results.append(InsufficientBalance())
        elif (capped := spend.take(key_id, amount)) is not None:
            results.append(capped)
        else:
            balance[uid] = left - amount
            taken[uid] = taken.get(uid, 0) + amount
            entries.append(_entry(uid, request_id, LedgerKind.FREEZE, amount, now, key_id))
            results.append(None)
    if entries:
        insert_many(conn, ledger, entries)
        _move(conn, {uid: (-n, -n) for uid, n in taken.items()})
        spend.save(conn)
    return results


def settle_many(conn: Connection, items: list[tuple[UsageRow, int]], now: float) -> list[int]:
    """Charge each call's cost, refund what the hold left over and record its usage row,
    in one transaction; returns each amount charged.

    The cost is what the upstream reported, whatever the hold: a call that cost more than
    its hold is charged the hold (``settle``) and the difference from the balance
    (``overage``), which may leave the balance below zero; the next hold is then refused
    (402) until a top-up.
    """
    entries, usage_rows, charged = [], [], []
    moves: dict[int, tuple[int, int]] = {}
    for usage, held in items:
        cost = max(0, usage.cost)
        settled = min(cost, held)
        if settled:
            entries.append(_entry(usage.user_id, usage.id, LedgerKind.SETTLE, settled, now,
                                  usage.key_id))
        if held - settled:
            entries.append(_entry(usage.user_id, usage.id, LedgerKind.REFUND, held - settled,
                                  now, usage.key_id))
        if cost > held:
            entries.append(_entry(usage.user_id, usage.id, LedgerKind.OVERAGE, cost - held, now,
                                  usage.key_id))
        back, freed = moves.get(usage.user_id, (0, 0))
        moves[usage.user_id] = (back + held - cost, freed + held)
        row = {name: getattr(usage, name) for name in _USAGE_FIELDS}
        row["cost"] = cost
        usage_rows.append(row)
        charged.append(cost)
    if entries:
        insert_many(conn, ledger, entries)
    _move(conn, moves)
    # rows locked in the order every transaction takes them: users, then keys; the key
    # gets back what the hold left over, or counts the overage too
    for usage, held in items:
        keyrows.give_back(conn, usage.key_id, held - max(0, usage.cost), usage.started_at,
                          now)
    insert_many(conn, llm_usage, usage_rows)
    return charged


def money_many(conn: Connection, holds: list[Hold],
               settles: list[tuple[UsageRow, int]],
               now: float) -> tuple[list[GengateError | None], list[int]]:
    """Settlements, then holds, in one transaction (a finished call's refund is there
    for the next call's hold): what :func:`settle_many` and :func:`hold_many` return."""
    settled = settle_many(conn, settles, now) if settles else []
    held = hold_many(conn, holds, now) if holds else []
    return held, settled


def usage_of(conn: Connection, user_id: int, page: int, limit: int,
             peek: int = 0) -> list[UsageRow]:
    """A user's usage rows, newest first: page ``page`` of ``limit`` rows, and ``peek``
    rows of the next page (to tell whether there is one)."""
    rows = conn.execute(
        select(llm_usage).where(llm_usage.c.user_id == user_id)
        .order_by(llm_usage.c.started_at.desc(), llm_usage.c.id.desc())
        .limit(limit + peek).offset((page - 1) * limit)
    )
    return [UsageRow(**r._mapping) for r in rows]


def usage_totals(conn: Connection, user_id: int, since: float) -> list[dict[str, Any]]:
    """A user's calls since ``since`` per model: how many, failed, tokens of each class and
    cost (milli-quota), the costliest model first."""
    u = llm_usage.c
    rows = conn.execute(
        select(u.model, func.count().label("calls"),
               func.sum(case((u.status != "ok", 1), else_=0)).label("failed"),
               func.sum(u.input_tokens).label("input_tokens"),
               func.sum(u.output_tokens).label("output_tokens"),
               func.sum(u.cache_write_tokens).label("cache_write_tokens"),
               func.sum(u.cache_read_tokens).label("cache_read_tokens"),
               func.sum(u.cost).label("cost"))
        .where(u.user_id == user_id, u.started_at >= since)
        .group_by(u.model).order_by(func.sum(u.cost).desc(), u.model))
    return [{k: (int(v or 0) if k != "model" else v) for k, v in r._mapping.items()}
            for r in rows]


def purge_usage(conn: Connection, before: float, batch: int = 5000) -> int:
    """Delete up to ``batch`` usage rows that started before ``before``; returns how many."""
    ids = select(llm_usage.c.id).where(llm_usage.c.started_at < before).limit(batch)
    result = conn.execute(delete(llm_usage).where(llm_usage.c.id.in_(ids.scalar_subquery())))
    return int(result.rowcount or 0)
