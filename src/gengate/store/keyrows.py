"""API key rows: create, list, change, rotate, revoke; the lookup behind authentication;
the key-change version every API process watches; and the keys' spend caps, counted in
the transaction that freezes a price (see :class:`SpendCaps`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, case, select, update

from gengate.errors import GengateError, NotFound
from gengate.keys import CAP_PERIODS, KeyCapReached, cap_message, day_of, period_of
from gengate.quota import LedgerKind
from gengate.store.channels import KEYS_CHANNEL, notify
from gengate.store.tables import api_keys, key_state, ledger, users
from gengate.store.userrows import User, _user, get_user

__all__ = ["KeyRow", "SpendCaps", "bump_version", "create", "key_by_hash", "list_rows",
           "modify", "revoke", "rotate", "spend_by_day", "version"]

#: key columns a caller may set (lists go in as JSON)
LIMIT_COLUMNS = ("name", "products", "models", "cidrs", "expires_at", "rate_per_second",
                 "rate_per_minute", "cap_day", "cap_month", "cap_total")
_LISTS = ("products", "models", "cidrs")


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: int
    user_id: int
    prefix: str
    name: str
    created_at: float
    revoked_at: float | None
    products: list[str] | None
    models: list[str] | None
    cidrs: list[str] | None
    expires_at: float | None
    rate_per_second: int | None
    rate_per_minute: int | None
    caps: dict[str, int]
    spent: dict[str, int]


def _list(raw: str | None) -> list[str] | None:
    return None if raw is None else [str(v) for v in orjson.loads(raw)]


def _key(row: Any, now: float | None = None) -> KeyRow:
    caps = {p: int(v) for p in CAP_PERIODS if (v := getattr(row, f"cap_{p}")) is not None}
    spent = {"total": int(row.spent_total)}
    if now is not None:
        spent["day"] = int(row.spent_day) if row.spent_day_on == period_of("day", now) else 0
        spent["month"] = (int(row.spent_month)
                          if row.spent_month_on == period_of("month", now) else 0)
    return KeyRow(
        id=row.id, user_id=row.user_id, prefix=row.prefix, name=row.name,
        created_at=row.created_at, revoked_at=row.revoked_at,
        products=_list(row.products), models=_list(row.models), cidrs=_list(row.cidrs),
        expires_at=row.expires_at, rate_per_second=row.rate_per_second,
        rate_per_minute=row.rate_per_minute, caps=caps, spent=spent,
    )


def _values(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if name not in LIMIT_COLUMNS:
            raise ValueError(f"not a key column: {name}")
        out[name] = (orjson.dumps(value).decode()
                     if name in _LISTS and value is not None else value)
    return out


# -- the version: every change to who may call what bumps it ------------------------------
def version(conn: Connection) -> int:
    return int(conn.execute(select(key_state.c.version).where(key_state.c.id == 1)).scalar()
               or 0)


def bump_version(conn: Connection) -> int:
    """Tell every API process (at its next poll; at once on PostgreSQL by NOTIFY) to drop
    the keys it cached."""
    row = conn.execute(update(key_state).where(key_state.c.id == 1)
                       .values(version=key_state.c.version + 1)
                       .returning(key_state.c.version)).first()
    if row is None:
        conn.execute(key_state.insert(), [{"id": 1, "version": 1}])
    notify(conn, KEYS_CHANNEL)
    return int(row.version) if row is not None else 1


# -- rows ---------------------------------------------------------------------------------
def create(conn: Connection, user_id: int, key_hash: str, prefix: str, now: float,
           limits: dict[str, Any]) -> KeyRow:
    get_user(conn, user_id)
    row = conn.execute(
        api_keys.insert().values(user_id=user_id, key_hash=key_hash, prefix=prefix,
                                 created_at=now, **_values(limits))
        .returning(*api_keys.c)
    ).first()
    assert row is not None
    return _key(row, now)


def get(conn: Connection, user_id: int, key_id: int, now: float) -> KeyRow:
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id,
                                              api_keys.c.user_id == user_id)).first()
    if row is None:
        raise NotFound(f"keyId: key {key_id} of user {user_id} not found")
    return _key(row, now)


def list_rows(conn: Connection, user_id: int, now: float) -> list[KeyRow]:
    get_user(conn, user_id)
    stmt = select(api_keys).where(api_keys.c.user_id == user_id).order_by(api_keys.c.id)
    return [_key(r, now) for r in conn.execute(stmt)]


def _live(key_id: int, user_id: int) -> Any:
    return (api_keys.c.id == key_id, api_keys.c.user_id == user_id,
            api_keys.c.revoked_at.is_(None))


def modify(conn: Connection, user_id: int, key_id: int, limits: dict[str, Any],
           now: float) -> KeyRow:
    """Change a live key's name or limits (``None``: remove that limit)."""
    if limits:
        done = conn.execute(update(api_keys).where(*_live(key_id, user_id))
                            .values(**_values(limits))).rowcount
        if done != 1:
            raise NotFound(f"keyId: key {key_id} of user {user_id} not found or revoked")
        bump_version(conn)
    return get(conn, user_id, key_id, now)


def rotate(conn: Connection, user_id: int, key_id: int, key_hash: str, prefix: str,
           now: float) -> KeyRow:
    """Give a live key a new secret; the old one stops working, the limits and the usage
    stay with the key."""
    done = conn.execute(update(api_keys).where(*_live(key_id, user_id))
                        .values(key_hash=key_hash, prefix=prefix)).rowcount
    if done != 1:
        raise NotFound(f"keyId: key {key_id} of user {user_id} not found or revoked")
    bump_version(conn)
    return get(conn, user_id, key_id, now)


def revoke(conn: Connection, user_id: int, key_id: int, now: float) -> None:
    done = conn.execute(update(api_keys).where(*_live(key_id, user_id))
                        .values(revoked_at=now)).rowcount
    if done != 1:
        raise NotFound(f"keyId: key {key_id} of user {user_id} not found or already revoked")
    bump_version(conn)


_BY_HASH = (
    select(users, api_keys.c.id.label("key_id"), api_keys.c.prefix, api_keys.c.name,
           api_keys.c.user_id, api_keys.c.created_at.label("key_created_at"),
           *[api_keys.c[n] for n in ("revoked_at", "products", "models", "cidrs", "expires_at",
                                     "cap_day", "cap_month", "cap_total", "spent_total",
                                     "spent_day", "spent_day_on", "spent_month",
                                     "spent_month_on")],
           api_keys.c.rate_per_second.label("key_rate_per_second"),
           api_keys.c.rate_per_minute.label("key_rate_per_minute"))
    .join(api_keys, api_keys.c.user_id == users.c.id)
    .where(api_keys.c.key_hash == bindparam("h"), api_keys.c.revoked_at.is_(None))
)


def key_by_hash(conn: Connection, key_hash: str) -> tuple[User, KeyRow] | None:
    """The user and the live key with this hash (one query: the auth path's only read)."""
    row = conn.execute(_BY_HASH, {"h": key_hash}).first()
    if row is None:
        return None
    caps = {p: int(v) for p in CAP_PERIODS if (v := getattr(row, f"cap_{p}")) is not None}
    key = KeyRow(
        id=row.key_id, user_id=row.user_id, prefix=row.prefix, name=row.name,
        created_at=row.key_created_at, revoked_at=row.revoked_at,
        products=_list(row.products), models=_list(row.models), cidrs=_list(row.cidrs),
        expires_at=row.expires_at, rate_per_second=row.key_rate_per_second,
        rate_per_minute=row.key_rate_per_minute, caps=caps, spent={},
    )
    return _user(row), key


# -- spend caps -----------------------------------------------------------------------------
class SpendCaps:
    """The spend of the keys in one freezing transaction, checked against their caps.

    :meth:`load` locks the keys' rows (``FOR UPDATE`` on PostgreSQL; SQLite's write lock
    is already held), :meth:`take` decides each price in order against what the ones before
    it left, and :meth:`save` writes the counters back, all before the transaction commits:
    concurrent submits against one cap pass exactly the affordable number. Every key is
    counted, capped or not, so a cap set later starts from what the key really spent.
    """

    def __init__(self, conn: Connection, key_ids: Iterable[int], now: float):
        self._now = now
        self._periods = {p: period_of(p, now) for p in CAP_PERIODS}
        self._state: dict[int, dict[str, Any]] = {}
        ids = sorted(set(key_ids))
        if not ids:
            return
        for kid, cap_day, cap_month, cap_total, day, day_on, month, month_on, total in \
                _spend_rows(conn, ids):
            caps = {p: int(v) for p, v in zip(CAP_PERIODS, (cap_day, cap_month, cap_total),
                                              strict=True) if v is not None}
            spent = {
                "day": day if day_on == self._periods["day"] else 0,
                "month": month if month_on == self._periods["month"] else 0,
                "total": total,
            }
            self._state[kid] = {"caps": caps, "spent": spent, "changed": False}

    def take(self, key_id: int | None, amount: int) -> GengateError | None:
        """Count ``amount`` against the key's caps, or the 402 saying which cap it passes."""
        st = self._state.get(key_id) if key_id is not None else None
        if st is None or amount <= 0:
            return None
        for period, cap in st["caps"].items():
            if st["spent"][period] + amount > cap:
                return KeyCapReached(cap_message(key_id or 0, period, cap))
        for period in CAP_PERIODS:
            st["spent"][period] += amount
        st["changed"] = True
        return None

    def save(self, conn: Connection) -> None:
        rows = [{"kid": kid, "day": st["spent"]["day"], "day_on": self._periods["day"],
                 "month": st["spent"]["month"], "month_on": self._periods["month"],
                 "total": st["spent"]["total"]}
                for kid, st in self._state.items() if st["changed"]]
        if not rows:
            return
        if conn.dialect.name == "sqlite":  # on the driver: see _spend_rows
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.executemany(_RAW_SAVE, [(r["day"], r["day_on"], r["month"], r["month_on"],
                                            r["total"], r["kid"]) for r in rows])
            return
        conn.execute(_SAVE, rows)


#: what a submit reads of its key, in this order
_SPEND = ("id", "cap_day", "cap_month", "cap_total", "spent_day", "spent_day_on",
          "spent_month", "spent_month_on", "spent_total")
_RAW_SAVE = ("UPDATE api_keys SET spent_day = ?, spent_day_on = ?, spent_month = ?, "
             "spent_month_on = ?, spent_total = ? WHERE id = ?")


def _spend_rows(conn: Connection, ids: list[int]) -> list[Any]:
    """The keys' caps and spend, locked until the transaction ends (``FOR UPDATE`` on
    PostgreSQL; SQLite's write lock is already held). Every admission asks, so on SQLite
    the statement goes straight to the driver, as the SQL layer costs more than SQLite."""
    if conn.dialect.name == "sqlite":
        driver = conn.connection.driver_connection
        assert driver is not None
        marks = ", ".join("?" * len(ids))
        return driver.execute(  # type: ignore[no-any-return]
            f"SELECT {', '.join(_SPEND)} FROM api_keys WHERE id IN ({marks}) ORDER BY id",
            ids).fetchall()
    stmt = (select(*[api_keys.c[name] for name in _SPEND]).where(api_keys.c.id.in_(ids))
            .order_by(api_keys.c.id).with_for_update())
    return list(conn.execute(stmt))


_SAVE = (
    update(api_keys).where(api_keys.c.id == bindparam("kid"))
    .values(spent_day=bindparam("day"), spent_day_on=bindparam("day_on"),
            spent_month=bindparam("month"), spent_month_on=bindparam("month_on"),
            spent_total=bindparam("total"))
)


def give_back(conn: Connection, key_id: int | None, amount: int, spent_at: float,
              now: float) -> None:
    """A refund: the key spent ``amount`` less than was counted at ``spent_at``; each
    period that is still the current one gets it back. A negative ``amount`` (an LLM
    call's overage) is counted the same way, as spent."""
    if key_id is None or amount == 0:
        return
    values: dict[str, Any] = {"spent_total": api_keys.c.spent_total - amount}
    for period in ("day", "month"):
        if period_of(period, spent_at) == period_of(period, now):
            column = api_keys.c[f"spent_{period}"]
            on = api_keys.c[f"spent_{period}_on"]
            values[f"spent_{period}"] = _minus_if(column, on, period_of(period, now), amount)
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))


def _minus_if(column: Any, on: Any, period: str, amount: int) -> Any:
    return case((on == period, column - amount), else_=column)


def spend_by_day(conn: Connection, user_id: int, since: float) -> list[dict[str, Any]]:
    """Per key and UTC day since ``since``: what was charged (settled, and an LLM call's
    overage) and how many requests."""
    charged = (LedgerKind.SETTLE.value, LedgerKind.OVERAGE.value)
    stmt = (
        select(ledger.c.key_id, ledger.c.kind, ledger.c.amount, ledger.c.created_at)
        .where(ledger.c.user_id == user_id, ledger.c.created_at >= since,
               ledger.c.kind.in_([*charged, LedgerKind.FREEZE.value]))
    )
    out: dict[tuple[int | None, str], dict[str, Any]] = {}
    for row in conn.execute(stmt):
        day = day_of(row.created_at)
        entry = out.setdefault((row.key_id, day), {"keyId": row.key_id, "day": day,
                                                   "spent": 0, "requests": 0})
        if row.kind in charged:
            entry["spent"] += int(row.amount)
        else:
            entry["requests"] += 1
    return sorted(out.values(), key=lambda e: (e["day"], e["keyId"] or 0), reverse=True)
