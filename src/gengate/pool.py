"""Managing upstream accounts: the operator's pool (``/admin/accounts``) and users' own
hosted accounts (``/hold/account/...``).

Input arrives validated in wire names (camelCase) and leaves as views that never carry
credentials: a view says only whether credentials are set. Users' hosted accounts may
point only at public addresses (unless the operator allows more), because the worker
calls whatever URL they give.
"""

from __future__ import annotations

import builtins
import time
from typing import Any

import orjson

from gengate.accounts import (
    AccountState,
    WorkWindows,
    modes_of_use_mode,
    slots_from,
    use_mode_of,
)
from gengate.clock import Clock, timestamp
from gengate.credentials import CredentialBox
from gengate.errors import BadRequest, NoAvailableAccounts
from gengate.jobs import Mode
from gengate.netguard import NetGuard
from gengate.products.registry import Registry, builtin
from gengate.store import AccountRow, Store

__all__ = ["PoolService"]

#: seconds a process trusts its list of which pools can serve which modes
SERVING_CACHE_SECONDS = 2.0
#: which credential each provider takes, by wire name
_SECRET_FIELD = {"midjourney_proxy": "secret", "ttapi": "apiKey"}
HOSTED_PROVIDERS = ("midjourney_proxy", "ttapi")
#: where an account of these providers points unless told otherwise
_DEFAULT_URLS = {"bfl": "https://api.bfl.ai", "openai": "https://api.openai.com",
                 "google": "https://generativelanguage.googleapis.com"}
#: fields that may be sent as null: null clears them
_NULLABLE = frozenset({"dailyCap", "instanceId", "pollInterval", "protocol", "secret",
                       "apiKey"})
OPERATOR = 0  #: owner of the operator's pool


class PoolService:
    def __init__(self, store: Store, clock: Clock, box: CredentialBox, guard: NetGuard,
                 max_hosted: int = 20, products: Registry | None = None):
        self.products = products if products is not None else builtin()
        self.store = store
        self.clock = clock
        self.box = box
        self.guard = guard
        self.max_hosted = max_hosted
        #: (trusted until, the live accounts, answers worked out from them)
        self._serving: tuple[float, list[Any], dict[tuple[Any, ...], bool]] | None = None

    # -- admission ------------------------------------------------------------------------
    async def require_serving(self, owner_id: int | None, mode: Mode,
                              relax_fallback: bool = False,
                              product: str = "midjourney") -> None:
        """400 ``No available accounts`` when no account of the pool could ever run a job
        of ``mode`` (none exists, or all are disabled, flagged or without such slots);
        a fast job that may fall back to relax also counts relax slots."""
        now = time.monotonic()
        if self._serving is None or self._serving[0] < now:
            self._serving = (now + SERVING_CACHE_SECONDS, await self.store.live_accounts(), {})
        # the answer, worked out once per question while the list of accounts is trusted
        question = (owner_id, mode, relax_fallback, product)
        answers = self._serving[2]
        serving = answers.get(question)
        if serving is None:
            modes = {mode.value}
            if relax_fallback and mode is Mode.FAST:
                modes.add(Mode.RELAX.value)
            serving = answers[question] = any(
                a.owner_id == owner_id and a.serves(product) and a.can_serve(m)
                for a in self._serving[1] for m in modes)
        if not serving:
            what = f"{mode.value} mode" if product == "midjourney" else (
                f"{product} ({mode.value} mode)")
            raise NoAvailableAccounts(f"No available accounts for {what}")

    def changed(self) -> None:
        """Accounts changed (here or in this process's worker): read them again."""
        self._serving = None

    # -- the operator's pool ----------------------------------------------------------------
    async def create(self, data: dict[str, Any]) -> dict[str, Any]:
        provider = data.get("provider", "midjourney_proxy")
        values = self._columns(data, provider, creating=True)
        row = await self.store.create_account(values, self.clock.now())
        self.changed()
        return await self._view_one(row)

    async def update(self, account_id: int, data: dict[str, Any],
                     owner_id: int = OPERATOR) -> dict[str, Any]:
        """Change an account of the operator's pool (or, with ``owner_id``, a user's)."""
        current = await self.store.get_account(account_id, owner_id)
        values = self._columns(data, current.account.provider, creating=False, current=current)
        row = await self.store.modify_account(account_id, owner_id, values, self.clock.now())
        self.changed()
        return await self._view_one(row)

    async def delete(self, account_id: int, owner_id: int = OPERATOR) -> None:
        await self.store.delete_account(account_id, owner_id, self.clock.now())
        self.changed()

    async def get(self, account_id: int) -> dict[str, Any]:
        return await self._view_one(await self.store.get_account(account_id, OPERATOR))

    async def list(self) -> list[dict[str, Any]]:
        rows = await self.store.list_accounts(None)
        busy = await self.store.account_busy()
        return [self.view(r, busy) for r in rows]

    async def events(self, account_id: int, owner_id: int = OPERATOR,
                     limit: int = 50) -> builtins.list[dict[str, Any]]:
        await self.store.get_account(account_id, owner_id)
        items = await self.store.account_events(account_id, limit)
        return [{**e, "at": timestamp(e["at"])} for e in items]

    async def reseal(self) -> dict[str, int]:
        """After putting a new key first in GENGATE_SECRET_KEY: seal every account's
        credentials with it, so that the old key can then be dropped."""
        return {"resealed": await self.store.reseal_accounts(self.box.rotate)}

    async def _view_one(self, row: AccountRow) -> dict[str, Any]:
        return self.view(row, await self.store.account_busy())

    def view(self, row: AccountRow, busy: dict[tuple[int, str], int]) -> dict[str, Any]:
        a = row.account
        today = time.strftime("%Y-%m-%d", time.gmtime(self.clock.now()))
        return {
            "id": a.id,
            "name": a.name,
            "provider": a.provider,
            "baseUrl": row.base_url,
            "instanceId": row.options.get("instanceId"),
            "protocol": row.options.get("protocol"),
            "hasCredentials": bool(row.credentials),
            "products": list(a.products),
            "slots": dict(a.slots),
            "inUse": {m: busy.get((a.id, m), 0) for m in a.slots},
            "priority": a.priority,
            "weight": a.weight,
            "enabled": a.enabled,
            "state": a.state.value,
            "stateReason": a.state_reason,
            "stateUntil": timestamp(a.state_until) if a.state is AccountState.COOLING else None,
            "dailyCap": a.daily_cap,
            "usedToday": a.day_count if a.day == today else 0,
            "minGap": a.min_gap,
            "gapJitter": a.gap_jitter,
            "workHours": a.work_hours,
            "pollInterval": row.options.get("pollInterval"),
            "createdAt": timestamp(row.created_at),
            "updatedAt": timestamp(row.updated_at),
        }

    # -- hosting (a user's own accounts) ----------------------------------------------------
    async def hold_add(self, user_id: int, data: dict[str, Any]) -> dict[str, Any]:
        provider = data.get("provider") or "midjourney_proxy"
        if provider not in HOSTED_PROVIDERS:
            raise BadRequest(f"provider: must be one of {', '.join(HOSTED_PROVIDERS)}")
        if len(await self.store.list_accounts(user_id)) >= self.max_hosted:
            raise BadRequest(f"accounts: at most {self.max_hosted} accounts per user; "
                             "delete one first")
        await self.guard.check(str(data["baseUrl"]), "baseUrl")
        values = self._columns(self._hold_fields(data), provider, creating=True)
        values["owner_id"] = user_id
        row = await self.store.create_account(values, self.clock.now())
        self.changed()
        return self.hold_view(row, await self.store.account_busy())

    async def hold_update(self, user_id: int, account_id: int,
                          data: dict[str, Any]) -> dict[str, Any]:
        current = await self.store.get_account(account_id, user_id)
        if data.get("baseUrl"):
            await self.guard.check(str(data["baseUrl"]), "baseUrl")
        fields = self._hold_fields(data, current)
        values = self._columns(fields, current.account.provider, creating=False,
                               current=current)
        row = await self.store.modify_account(account_id, user_id, values, self.clock.now())
        self.changed()
        return self.hold_view(row, await self.store.account_busy())

    async def hold_list(self, user_id: int) -> builtins.list[dict[str, Any]]:
        rows = await self.store.list_accounts(user_id)
        busy = await self.store.account_busy()
        return [self.hold_view(r, busy) for r in rows]

    def hold_view(self, row: AccountRow, busy: dict[tuple[int, str], int]) -> dict[str, Any]:
        a = row.account
        use_mode = use_mode_of(a.modes)
        mode = modes_of_use_mode(use_mode).value
        return {
            "accountId": a.id,
            "name": a.name,
            "provider": a.provider,
            "baseUrl": row.base_url,
            "instanceId": row.options.get("instanceId"),
            "protocol": row.options.get("protocol"),
            "hasCredentials": bool(row.credentials),
            "useMode": use_mode,
            "maxConcurrency": a.slots.get(mode, 0),
            "inProgress": busy.get((a.id, mode), 0),
            "enabled": a.enabled,
            "status": "normal" if a.state is AccountState.HEALTHY else a.state.value,
            "statusReason": a.state_reason,
            "createdAt": timestamp(row.created_at),
        }

    @staticmethod
    def _hold_fields(data: dict[str, Any], current: AccountRow | None = None) -> dict[str, Any]:
        """Hosting's fields (``useMode``, ``maxConcurrency``) as the pool's (``slots``)."""
        out = {k: v for k, v in data.items() if k not in ("useMode", "maxConcurrency")}
        if "useMode" in data or "maxConcurrency" in data:
            old_mode = use_mode_of(current.account.modes) if current else 2
            use_mode = data.get("useMode") or old_mode
            mode = modes_of_use_mode(int(use_mode)).value
            old_slots = current.account.slots.get(modes_of_use_mode(old_mode).value, 3) \
                if current else 3
            out["slots"] = {mode: int(data.get("maxConcurrency") or old_slots)}
        return out

    # -- shared -----------------------------------------------------------------------------
    def provider_kinds(self) -> builtins.list[str]:
        """``local`` and every kind some product has an adapter for."""
        kinds = {"local"}
        for product in self.products:
            kinds.update(product.adapters())
        return sorted(kinds)

    def _products(self, names: builtins.list[str] | None, provider: str) -> str:
        """The products an account runs, checked against what its provider can run
        (default: Midjourney where the provider runs it, else all the provider runs but the
        products that want to be named, :attr:`Product.opt_in_kinds`)."""
        able = [p.name for p in self.products
                if provider == "local" or provider in p.adapters()]
        if names is None:
            default = [p.name for p in self.products if provider in p.adapters()
                       and provider not in p.opt_in_kinds]
            names = ["*"] if provider == "local" else (
                ["midjourney"] if "midjourney" in able else default)
        if not names:
            raise BadRequest("products: give at least one product")
        for name in names:
            if name == "*" and provider == "local":
                continue
            if name not in able:
                raise BadRequest(f"products: a {provider} account cannot run `{name}`; "
                                 f"it runs {', '.join(able) or 'nothing'}")
        return orjson.dumps(sorted(set(names))).decode()

    def _credentials(self, data: dict[str, Any], provider: str,
                     creating: bool) -> dict[str, Any]:
        secret_field = None if provider == "local" else _SECRET_FIELD.get(provider, "apiKey")
        for name in ("secret", "apiKey"):
            if data.get(name) and name != secret_field:
                raise BadRequest(f"{name}: a {provider} account takes "
                                 f"{secret_field or 'no credentials'}")
        if secret_field and data.get(secret_field):
            return {"credentials": self.box.seal({secret_field: str(data[secret_field])})}
        if creating and secret_field == "apiKey":
            raise BadRequest(f"apiKey: is required for a {provider} account")
        return {}

    def _columns(self, data: dict[str, Any], provider: str, *, creating: bool,
                 current: AccountRow | None = None) -> dict[str, Any]:
        """Wire fields to columns, checked; credentials sealed."""
        _no_nulls(data)
        kinds = self.provider_kinds()
        if provider not in kinds:
            raise BadRequest(f"provider: must be one of {', '.join(kinds)}")
        values: dict[str, Any] = {}
        if "products" in data or creating:
            values["products"] = self._products(data.get("products"), provider)
        if creating:
            values["provider"] = provider
        if "name" in data:
            values["name"] = data["name"]
        if creating and not data.get("baseUrl") and provider in _DEFAULT_URLS:
            data = {**data, "baseUrl": _DEFAULT_URLS[provider]}
        if "baseUrl" in data and data["baseUrl"] is not None:
            NetGuard.parse(str(data["baseUrl"]), "baseUrl")
            values["base_url"] = str(data["baseUrl"]).rstrip("/")
        if creating and provider != "local" and not values.get("base_url"):
            raise BadRequest(f"baseUrl: is required for a {provider} account")
        values.update(self._credentials(data, provider, creating))
        values["options"] = _options(data, current)
        if "slots" in data:
            values["slots"] = orjson.dumps(slots_from(data["slots"])).decode()
        elif creating:
            values["slots"] = orjson.dumps({Mode.FAST.value: 3}).decode()
        simple = {"priority": "priority", "weight": "weight", "enabled": "enabled",
                  "dailyCap": "daily_cap", "minGap": "min_gap", "gapJitter": "gap_jitter"}
        for wire_name, column in simple.items():
            if wire_name in data:
                values[column] = data[wire_name]
        if "workHours" in data:
            values["work_hours"] = WorkWindows(data["workHours"]).spec
        return values


def _no_nulls(data: dict[str, Any]) -> None:
    for name, value in data.items():
        if value is None and name not in _NULLABLE:
            raise BadRequest(f"{name}: must not be null")


def _options(data: dict[str, Any], current: AccountRow | None) -> str:
    """The adapter's options (instance, poll interval, midjourney-proxy protocol) as
    stored: null clears one."""
    options = dict(current.options) if current else {}
    for name in ("instanceId", "pollInterval", "protocol"):
        if name in data:
            options[name] = data[name]
    return orjson.dumps({k: v for k, v in options.items() if v is not None}).decode()
