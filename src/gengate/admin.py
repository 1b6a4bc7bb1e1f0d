"""Operator actions: users, their keys, top-ups, limits and ledgers."""

from __future__ import annotations

import builtins
from typing import Any

from gengate.access import Access
from gengate.clock import Clock, timestamp
from gengate.errors import BadRequest
from gengate.keyring import KeyService
from gengate.passwords import hash_password
from gengate.quota import LedgerKind, from_milli, to_milli
from gengate.store import Store, User

__all__ = ["AdminService", "user_view"]


def user_view(user: User) -> dict[str, Any]:
    return {
        "userId": user.id,
        "email": user.email,
        "balance": from_milli(user.balance),
        "freeze_balance": from_milli(user.freeze_balance),
        "max_queue": user.max_queue,
        "in_flight": user.in_flight,
        "active": user.active,
        "rate_per_second": user.rate_per_second,
        "rate_per_minute": user.rate_per_minute,
        "created_at": timestamp(user.created_at),
    }


class AdminService:
    def __init__(self, store: Store, clock: Clock, keys: KeyService, access: Access,
                 default_max_queue: int):
        self.store = store
        self.clock = clock
        self.key_service = keys
        self.access = access
        self.default_max_queue = default_max_queue

    async def create_user(self, email: str, balance: float = 0,
                          max_queue: int | None = None) -> dict[str, Any]:
        """A new user with one API key; the key is shown here once and never again."""
        if balance < 0:
            raise BadRequest("balance: must not be negative")
        user = await self.store.create_user(
            email, to_milli(balance),
            self.default_max_queue if max_queue is None else max_queue, self.clock.now()
        )
        key = await self.issue_key(user.id)
        return {**user_view(user), "apiKey": key["apiKey"], "keyId": key["keyId"]}

    async def issue_key(self, user_id: int,
                        limits: dict[str, Any] | None = None) -> dict[str, Any]:
        """Another key for the user, with optional limits (docs/keys.md)."""
        return await self.key_service.create(user_id, limits or {})

    async def revoke_key(self, user_id: int, key_id: int) -> None:
        """Every API process stops accepting the key within a second."""
        await self.key_service.revoke(user_id, key_id)

    async def set_password(self, user_id: int, password: str | None) -> None:
        """The user's console password (argon2id); ``None`` removes it (API-key sign-in
        only)."""
        await self.store.set_password(
            user_id, None if password is None else hash_password(password))

    async def topup(self, user_id: int, amount: float, note: str = "") -> dict[str, Any]:
        milli = to_milli(amount)
        if milli == 0:
            raise BadRequest("amount: must not be zero (amounts count in steps of 0.001)")
        user = await self.store.topup(user_id, milli, self.clock.now(), note)
        return user_view(user)

    async def update(self, user_id: int, max_queue: int | None = None,
                     active: bool | None = None, rate_per_second: int | None = None,
                     rate_per_minute: int | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in (("rate_per_second", rate_per_second),
                            ("rate_per_minute", rate_per_minute)):
            if value is not None:
                if value < 0:
                    raise BadRequest(f"{name}: must not be negative")
                values[name] = value
        if max_queue is not None:
            if max_queue < 0:
                raise BadRequest("max_queue: must not be negative")
            values["max_queue"] = max_queue
        if active is not None:
            values["active"] = active
        user = await self.store.update_user(user_id, values)
        if active is not None or rate_per_second is not None or rate_per_minute is not None:
            await self.access.changed()
        return user_view(user)

    async def get(self, user_id: int) -> dict[str, Any]:
        return user_view(await self.store.get_user(user_id))

    async def list(self) -> list[dict[str, Any]]:
        return [user_view(u) for u in await self.store.list_users()]

    async def keys(self, user_id: int) -> builtins.list[dict[str, Any]]:
        return await self.key_service.list(user_id)

    async def ledger_all(self, filters: dict[str, Any], limit: int = 100,
                         offset: int = 0) -> dict[str, Any]:
        """Ledger rows across users (``filters``: ``user_id``, ``kind``, ``job_id``,
        ``since``, ``until``), newest first, with the filtered totals per kind."""
        entries, totals, count = await self.store.all_ledger(filters, limit, offset)
        return {
            "count": count,
            "totals": {k.value: from_milli(totals.get(k.value, 0)) for k in LedgerKind},
            "entries": [
                {"id": e["id"], "userId": e["user_id"], "email": e["email"],
                 "jobId": e["job_id"], "kind": e["kind"], "amount": from_milli(e["amount"]),
                 "note": e["note"], "created_at": timestamp(e["created_at"]),
                 "keyId": e["key_id"]}
                for e in entries
            ],
        }

    async def ledger(self, user_id: int, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        user = await self.store.get_user(user_id)
        entries = await self.store.ledger(user_id, limit, offset)
        totals = await self.store.ledger_totals(user_id)
        return {
            "user": user_view(user),
            "totals": {k: from_milli(v) for k, v in totals.items()},
            "entries": [
                {"id": e.id, "jobId": e.job_id, "kind": e.kind, "amount": from_milli(e.amount),
                 "note": e.note, "created_at": timestamp(e.created_at), "keyId": e.key_id}
                for e in entries
            ],
        }
