"""Upstream account rows: configuration, slot usage, health transitions and their log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from gengate.accounts import Account, AccountState, FailureKind, Transition, on_failure
from gengate.errors import Conflict, NotFound
from gengate.jobs import JobStatus
from gengate.store.tables import account_events, jobs, upstream_accounts

__all__ = ["AccountRow", "row_to_account"]

OPERATOR = 0  #: owner_id of the operator's pool


class AccountRow:
    """An account with what only the store and the worker see: its sealed credentials,
    base URL and options."""

    __slots__ = ("account", "base_url", "created_at", "credentials", "failures", "options",
                 "updated_at", "version")

    def __init__(self, account: Account, base_url: str | None, credentials: str | None,
                 options: dict[str, Any], version: int, failures: int, created_at: float,
                 updated_at: float):
        self.account = account
        self.base_url = base_url
        self.credentials = credentials
        self.options = options
        self.version = version
        self.failures = failures
        self.created_at = created_at
        self.updated_at = updated_at


def row_to_account(row: Any) -> Account:
    return Account(
        id=row.id, name=row.name, provider=row.provider,
        owner_id=row.owner_id or None, slots=orjson.loads(row.slots),
        priority=row.priority, weight=row.weight, enabled=bool(row.enabled),
        state=AccountState(row.state), state_reason=row.state_reason,
        state_until=row.state_until, daily_cap=row.daily_cap, day=row.day,
        day_count=row.day_count, min_gap=row.min_gap, gap_jitter=row.gap_jitter,
        next_submit_at=row.next_submit_at, work_hours=row.work_hours,
        deleted=row.deleted_at is not None, products=tuple(orjson.loads(row.products)),
    )


def _full(row: Any) -> AccountRow:
    return AccountRow(row_to_account(row), row.base_url, row.credentials,
                      orjson.loads(row.options), row.version, row.failures, row.created_at,
                      row.updated_at)


def create(conn: Connection, values: dict[str, Any], now: float) -> AccountRow:
    owner = values.get("owner_id") or OPERATOR
    exists = conn.execute(select(upstream_accounts.c.id).where(
        upstream_accounts.c.owner_id == owner, upstream_accounts.c.name == values["name"],
    )).first()
    if exists is not None:
        raise Conflict(f"name: an account named {values['name']!r} already exists")
    row = conn.execute(upstream_accounts.insert().values(
        **{**values, "owner_id": owner}, created_at=now, updated_at=now,
    ).returning(*upstream_accounts.c)).one()
    return _full(row)


def get(conn: Connection, account_id: int, owner_id: int | None = None) -> AccountRow:
    """One account; with ``owner_id``, only if that owner (0: the operator) has it, else
    404."""
    stmt = select(upstream_accounts).where(upstream_accounts.c.id == account_id,
                                           upstream_accounts.c.deleted_at.is_(None))
    if owner_id is not None:
        stmt = stmt.where(upstream_accounts.c.owner_id == owner_id)
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"accountId: account {account_id} not found")
    return _full(row)


def get_any(conn: Connection, account_id: int) -> AccountRow | None:
    """An account even if deleted (the worker finishing its jobs needs it)."""
    row = conn.execute(select(upstream_accounts).where(
        upstream_accounts.c.id == account_id)).first()
    return _full(row) if row is not None else None


def list_rows(conn: Connection, owner_id: int | None) -> list[AccountRow]:
    """The operator's pool (``owner_id`` None) or one user's hosted accounts."""
    stmt = select(upstream_accounts).where(
        upstream_accounts.c.deleted_at.is_(None),
        upstream_accounts.c.owner_id == (owner_id or OPERATOR),
    ).order_by(upstream_accounts.c.id)
    return [_full(r) for r in conn.execute(stmt)]


def modify(conn: Connection, account_id: int, owner_id: int | None, values: dict[str, Any],
           now: float) -> AccountRow:
    """Change configuration; enabling an account also clears its health flags."""
    current = get(conn, account_id, owner_id)
    if "name" in values and values["name"] != current.account.name:
        owner = current.account.owner_id or OPERATOR
        clash = conn.execute(select(upstream_accounts.c.id).where(
            upstream_accounts.c.owner_id == owner, upstream_accounts.c.name == values["name"],
            upstream_accounts.c.deleted_at.is_(None),
        )).first()
        if clash is not None:
            raise Conflict(f"name: an account named {values['name']!r} already exists")
    if values.get("enabled") and current.account.state is not AccountState.HEALTHY:
        _transition(conn, current.account, Transition(AccountState.HEALTHY, "enabled by hand"),
                    now)
        values = {**values, "failures": 0}
    conn.execute(update(upstream_accounts).where(upstream_accounts.c.id == account_id).values(
        **values, updated_at=now, version=upstream_accounts.c.version + 1))
    return get(conn, account_id, owner_id)


def delete(conn: Connection, account_id: int, owner_id: int | None, now: float) -> None:
    """Soft delete: jobs already running there finish; follow-ups of its jobs fail."""
    current = get(conn, account_id, owner_id)
    # the name is free again for a new account
    buried = f"{current.account.name[:40]}~deleted-{account_id}"
    conn.execute(update(upstream_accounts).where(upstream_accounts.c.id == account_id).values(
        deleted_at=now, enabled=False, updated_at=now, name=buried,
        version=upstream_accounts.c.version + 1))


def ensure_local(conn: Connection, slots: dict[str, int], now: float) -> None:
    """The built-in renderer as an operator account named ``local``, unless one exists."""
    found = conn.execute(select(upstream_accounts.c.id).where(
        upstream_accounts.c.owner_id == OPERATOR, upstream_accounts.c.name == "local",
    )).first()
    if found is not None:
        return
    # several nodes may start at once: the unique name lets only one of them create it
    values = {"owner_id": OPERATOR, "name": "local", "provider": "local",
              "slots": orjson.dumps(slots).decode(), "options": "{}", "created_at": now,
              "updated_at": now, "products": '["*"]'}
    if conn.dialect.name == "postgresql":
        conn.execute(pg_insert(upstream_accounts).values(**values).on_conflict_do_nothing())
    else:
        conn.execute(upstream_accounts.insert().values(**values).prefix_with("OR IGNORE"))


def live(conn: Connection) -> list[Account]:
    """Every account that is not deleted, for routing."""
    stmt = select(upstream_accounts).where(upstream_accounts.c.deleted_at.is_(None))
    return [row_to_account(r) for r in conn.execute(stmt)]


def lock_pools(conn: Connection, owners: set[int | None]) -> list[Account]:
    """The accounts of these pools (None: the operator's), locked so that concurrent
    claims see each other's slot use (PostgreSQL; SQLite's single writer already
    serializes claims). Other users' hosted accounts are neither read nor locked."""
    keys = sorted(o or OPERATOR for o in owners)
    stmt = (select(upstream_accounts)
            .where(upstream_accounts.c.deleted_at.is_(None),
                   upstream_accounts.c.owner_id.in_(keys))
            .order_by(upstream_accounts.c.id).with_for_update())
    return [row_to_account(r) for r in conn.execute(stmt)]


def busy(conn: Connection, account_ids: list[int] | None = None) -> dict[tuple[int, str], int]:
    """Jobs running per (account, slot mode): the slots in use."""
    stmt = (select(jobs.c.account_id, jobs.c.slot_mode, func.count().label("n"))
            .where(jobs.c.status == JobStatus.ON_QUEUE.value, jobs.c.account_id.is_not(None))
            .group_by(jobs.c.account_id, jobs.c.slot_mode))
    if account_ids is not None:
        stmt = stmt.where(jobs.c.account_id.in_(account_ids))
    return {(r.account_id, r.slot_mode): int(r.n) for r in conn.execute(stmt)}


def mark_assigned(conn: Connection, account: Account, now: float, gap: float,
                  today: str) -> None:
    """One more submission today; the next may not start before the pacing gap."""
    count = account.day_count + 1 if account.day == today else 1
    account.day, account.day_count = today, count
    account.next_submit_at = now + gap if gap else account.next_submit_at
    conn.execute(update(upstream_accounts).where(upstream_accounts.c.id == account.id).values(
        day=today, day_count=count, next_submit_at=account.next_submit_at))


def _transition(conn: Connection, account: Account, change: Transition, now: float,
                next_probe_at: float | None = None) -> None:
    values: dict[str, Any] = {"state": change.state.value, "state_reason": change.reason,
                              "state_until": change.until}
    if next_probe_at is not None:
        values["next_probe_at"] = next_probe_at
    conn.execute(update(upstream_accounts).where(upstream_accounts.c.id == account.id)
                 .values(**values))
    if change.state is not account.state or change.reason != account.state_reason:
        conn.execute(account_events.insert().values(
            account_id=account.id, at=now, from_state=account.state.value,
            to_state=change.state.value, reason=change.reason))


def record_failure(conn: Connection, account_id: int, kind: FailureKind, detail: str,
                   retry_after: float | None, now: float,
                   probe_interval: float) -> Transition | None:
    """Count a failure and move the account's health accordingly (logged)."""
    row = conn.execute(select(upstream_accounts).where(upstream_accounts.c.id == account_id)
                       .with_for_update()).first()
    if row is None:
        return None
    account = row_to_account(row)
    failures = row.failures + 1
    conn.execute(update(upstream_accounts).where(upstream_accounts.c.id == account_id)
                 .values(failures=failures))
    change = on_failure(kind, detail, now, failures=failures, retry_after=retry_after)
    if change is None or account.state is AccountState.DISABLED:
        return None
    if account.state is AccountState.ATTENTION and change.state is AccountState.COOLING:
        return None  # a flagged account stays flagged until a probe clears it
    next_probe = change.until if change.until is not None else now + probe_interval
    _transition(conn, account, change, now, next_probe)
    return change


def record_ok(conn: Connection, account_id: int, now: float, reason: str) -> bool:
    """The account worked: clear its failure count, and bring it back if it was cooling
    or flagged (a probe or a submission succeeded)."""
    row = conn.execute(select(upstream_accounts).where(
        upstream_accounts.c.id == account_id,
        or_(upstream_accounts.c.failures > 0,
            upstream_accounts.c.state.in_([AccountState.COOLING.value,
                                           AccountState.ATTENTION.value])),
    ).with_for_update()).first()
    if row is None:
        return False
    account = row_to_account(row)
    conn.execute(update(upstream_accounts).where(upstream_accounts.c.id == account_id)
                 .values(failures=0))
    if account.state in (AccountState.COOLING, AccountState.ATTENTION):
        _transition(conn, account, Transition(AccountState.HEALTHY, reason), now)
        return True
    return False


def due_probes(conn: Connection, now: float, interval: float) -> list[AccountRow]:
    """Cooling accounts whose time is up and flagged accounts due for a check; each is
    taken by one caller (its next probe time moves on in this transaction)."""
    due = or_(
        and_(upstream_accounts.c.state == AccountState.COOLING.value,
             upstream_accounts.c.state_until <= now),
        upstream_accounts.c.state == AccountState.ATTENTION.value,
    )
    stmt = (select(upstream_accounts)
            .where(due, upstream_accounts.c.next_probe_at <= now,
                   upstream_accounts.c.deleted_at.is_(None),
                   upstream_accounts.c.enabled.is_(True))
            .with_for_update(skip_locked=True))
    rows = [_full(r) for r in conn.execute(stmt)]
    if rows:
        conn.execute(update(upstream_accounts)
                     .where(upstream_accounts.c.id.in_([r.account.id for r in rows]))
                     .values(next_probe_at=now + interval))
    return rows


def events(conn: Connection, account_id: int, limit: int) -> list[dict[str, Any]]:
    stmt = (select(account_events).where(account_events.c.account_id == account_id)
            .order_by(account_events.c.id.desc()).limit(limit))
    return [{"at": r.at, "from": r.from_state, "to": r.to_state, "reason": r.reason}
            for r in conn.execute(stmt)]


def reseal(conn: Connection, rotate: Callable[[str], str]) -> int:
    """Seal every account's credentials again (deleted and hosted ones too)."""
    rows = list(conn.execute(select(upstream_accounts.c.id, upstream_accounts.c.credentials)
                             .where(upstream_accounts.c.credentials.is_not(None))))
    for row in rows:
        conn.execute(update(upstream_accounts).where(upstream_accounts.c.id == row.id)
                     .values(credentials=rotate(row.credentials)))
    return len(rows)
