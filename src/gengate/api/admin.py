"""``/admin``: the operator's API, behind ``Authorization: Bearer <GENGATE_ADMIN_KEY>``."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route

from gengate.api import schemas as s
from gengate.api.envelope import envelope_endpoint, ok, read_request
from gengate.errors import (
    BadRequest,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
)
from gengate.prices import PriceService
from gengate.runtime import Runtime

__all__ = ["ADMIN_ROUTES"]


async def _runtime(request: Request) -> Runtime:
    """The runtime, once the request carries the admin key; an address that keeps sending
    wrong keys is refused (429) for a while."""
    rt: Runtime = request.app.state.runtime
    key = rt.settings.admin_key
    if not key:
        raise Unauthorized("The admin API is disabled: set GENGATE_ADMIN_KEY")
    address = request.client.host if request.client else "unknown"
    await rt.limiter.check_admin_address(address)
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(),
                                                                key.encode()):
        await rt.limiter.admin_failed(address)
        raise Unauthorized("Wrong admin key")
    return rt


async def _body(request: Request, model: type[s._Wire]) -> Any:
    raw = await read_request(request, request.app.state.runtime.settings.max_json_body_bytes)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw.strip() and ctype != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {ctype or 'none'}")
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body: invalid JSON ({exc.msg})") from None
    return s.parse(model, data)


def _id(request: Request, param: str, what: str) -> int:
    """A row id from the path; anything that cannot be one (not ASCII digits, or past a
    32-bit integer) is simply not found."""
    raw = request.path_params[param]
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) < 2**31):
        raise NotFound(f"{what} {raw} not found")
    return int(raw)


def _user_id(request: Request) -> int:
    return _id(request, "user_id", "user")


def _int_query(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 0 <= int(raw) <= high:
        raise BadRequest(f"{name}: must be an integer from 0 to {high}")
    return int(raw)


async def create_user(request: Request) -> Any:
    rt = await _runtime(request)
    req: s.CreateUserRequest = await _body(request, s.CreateUserRequest)
    return ok(await rt.admin.create_user(req.email, req.balance, req.max_queue))


async def list_users(request: Request) -> Any:
    return ok(await (await _runtime(request)).admin.list())


async def get_user(request: Request) -> Any:
    rt = await _runtime(request)
    return ok(await rt.admin.get(_user_id(request)))


async def update_user(request: Request) -> Any:
    rt = await _runtime(request)
    req: s.UpdateUserRequest = await _body(request, s.UpdateUserRequest)
    return ok(await rt.admin.update(_user_id(request), req.max_queue, req.active,
                                    req.rate_per_second, req.rate_per_minute))


async def topup(request: Request) -> Any:
    rt = await _runtime(request)
    req: s.TopUpRequest = await _body(request, s.TopUpRequest)
    return ok(await rt.admin.topup(_user_id(request), req.amount, req.note))


async def set_password(request: Request) -> Any:
    rt = await _runtime(request)
    req: s.PasswordRequest = await _body(request, s.PasswordRequest)
    await rt.admin.set_password(_user_id(request), req.password)
    return ok(None)


async def issue_key(request: Request) -> Any:
    rt = await _runtime(request)
    req = await _body(request, s.KeyCreate)
    return ok(await rt.admin.issue_key(_user_id(request), req.model_dump(exclude_unset=True)))


def _key_id(request: Request) -> int:
    return _id(request, "key_id", "keyId: key")


async def get_key(request: Request) -> Any:
    rt = await _runtime(request)
    return ok(await rt.keys.get(_user_id(request), _key_id(request)))


async def update_key(request: Request) -> Any:
    rt = await _runtime(request)
    req = await _body(request, s.KeyUpdate)
    return ok(await rt.keys.update(_user_id(request), _key_id(request),
                                   req.model_dump(exclude_unset=True)))


async def rotate_key(request: Request) -> Any:
    rt = await _runtime(request)
    return ok(await rt.keys.rotate(_user_id(request), _key_id(request)))


async def key_usage(request: Request) -> Any:
    rt = await _runtime(request)
    days = _int_query(request, "days", 30, 366)
    if days < 1:
        raise BadRequest("days: must be an integer from 1 to 366")
    return ok(await rt.keys.usage(_user_id(request), days))


async def list_keys(request: Request) -> Any:
    rt = await _runtime(request)
    return ok(await rt.admin.keys(_user_id(request)))


async def revoke_key(request: Request) -> Any:
    rt = await _runtime(request)
    await rt.admin.revoke_key(_user_id(request), _id(request, "key_id", "key"))
    return ok(None)


async def ledger(request: Request) -> Any:
    rt = await _runtime(request)
    limit = _int_query(request, "limit", 100, 1000)
    offset = _int_query(request, "offset", 0, 10**9)
    return ok(await rt.admin.ledger(_user_id(request), limit, offset))


def _account_id(request: Request) -> int:
    return _id(request, "account_id", "accountId: account")


async def create_account(request: Request) -> Any:
    rt = await _runtime(request)
    req = await _body(request, s.CreateAccountRequest)
    return ok(await rt.pool.create(req.model_dump(exclude_unset=True)))


async def list_accounts(request: Request) -> Any:
    return ok(await (await _runtime(request)).pool.list())


async def get_account(request: Request) -> Any:
    rt = await _runtime(request)
    return ok(await rt.pool.get(_account_id(request)))


async def update_account(request: Request) -> Any:
    rt = await _runtime(request)
    req = await _body(request, s.UpdateAccountRequest)
    return ok(await rt.pool.update(_account_id(request), req.model_dump(exclude_unset=True)))


async def delete_account(request: Request) -> Any:
    rt = await _runtime(request)
    await rt.pool.delete(_account_id(request))
    return ok(None)


async def account_events(request: Request) -> Any:
    rt = await _runtime(request)
    limit = _int_query(request, "limit", 50, 1000)
    return ok(await rt.pool.events(_account_id(request), limit=limit))


async def check_account(request: Request) -> Any:
    """Probe the account now with the background health pass's own check."""
    rt = await _runtime(request)
    account_id = _account_id(request)
    await rt.pool.get(account_id)  # 404 before anything is probed
    if rt.upstreams is None:
        raise BadRequest("This process runs no upstreams to check")
    failure = await rt.upstreams.check_now(account_id)
    return ok({"ok": failure is None, "message": failure or "",
               "account": await rt.pool.get(account_id)})


def _prices(rt: Runtime) -> PriceService:
    if rt.prices is None:
        raise BadRequest("This process keeps no prices")
    return rt.prices


async def list_prices(request: Request) -> Any:
    return ok(_prices(await _runtime(request)).list())


async def set_price(request: Request) -> Any:
    rt = await _runtime(request)
    req = await _body(request, s.PriceSet)
    return ok(await _prices(rt).set(req.tier, req.key, req.price))


async def remove_price(request: Request) -> Any:
    rt = await _runtime(request)
    key = request.query_params.get("key")
    if not key:
        raise BadRequest("key: is required (the query's product:action:mode)")
    await _prices(rt).remove(request.query_params.get("tier", "main"), key)
    return ok(None)


_E = envelope_endpoint

ADMIN_ROUTES = [
    Route("/admin/users", _E(create_user), methods=["POST"]),
    Route("/admin/users", _E(list_users), methods=["GET"]),
    Route("/admin/users/{user_id}", _E(get_user), methods=["GET"]),
    Route("/admin/users/{user_id}", _E(update_user), methods=["PATCH"]),
    Route("/admin/users/{user_id}/topup", _E(topup), methods=["POST"]),
    Route("/admin/users/{user_id}/password", _E(set_password), methods=["PUT"]),
    Route("/admin/users/{user_id}/keys", _E(issue_key), methods=["POST"]),
    Route("/admin/users/{user_id}/keys", _E(list_keys), methods=["GET"]),
    Route("/admin/users/{user_id}/keys/usage", _E(key_usage), methods=["GET"]),
    Route("/admin/users/{user_id}/keys/{key_id}", _E(get_key), methods=["GET"]),
    Route("/admin/users/{user_id}/keys/{key_id}", _E(update_key), methods=["PATCH"]),
    Route("/admin/users/{user_id}/keys/{key_id}", _E(revoke_key), methods=["DELETE"]),
    Route("/admin/users/{user_id}/keys/{key_id}/rotate", _E(rotate_key), methods=["POST"]),
    Route("/admin/users/{user_id}/ledger", _E(ledger), methods=["GET"]),
    Route("/admin/accounts", _E(create_account), methods=["POST"]),
    Route("/admin/accounts", _E(list_accounts), methods=["GET"]),
    Route("/admin/accounts/{account_id}", _E(get_account), methods=["GET"]),
    Route("/admin/accounts/{account_id}", _E(update_account), methods=["PATCH"]),
    Route("/admin/accounts/{account_id}", _E(delete_account), methods=["DELETE"]),
    Route("/admin/accounts/{account_id}/events", _E(account_events), methods=["GET"]),
    Route("/admin/accounts/{account_id}/check", _E(check_account), methods=["POST"]),
    Route("/admin/prices", _E(list_prices), methods=["GET"]),
    Route("/admin/prices", _E(set_price), methods=["PUT"]),
    Route("/admin/prices", _E(remove_price), methods=["DELETE"]),
]
