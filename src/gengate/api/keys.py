"""``/keys/...``: a user manages his own API keys with one of them (TTAPI envelope).

A key with limits (products, models, addresses, expiry or a spend cap) may not manage keys:
otherwise it could make itself a key without them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gengate.api import schemas as s
from gengate.api.call import Call
from gengate.api.envelope import ok
from gengate.keys import KeyForbidden
from gengate.runtime import Runtime

__all__ = ["key_routes"]


def _owner(call: Call) -> int:
    key = call.key
    if key is not None and key.restricted:
        raise KeyForbidden(f"{key.label} has limits and may not manage keys "
                           "(rule: only a key without limits manages keys)")
    return call.user_id


def _set(req: s._Wire, *exclude: str) -> dict[str, Any]:
    return req.model_dump(exclude_unset=True, exclude=set(exclude))


async def list_keys(rt: Runtime, call: Call) -> Any:
    return ok(await rt.keys.list(_owner(call)))


async def create_key(rt: Runtime, call: Call) -> Any:
    user_id = _owner(call)
    req = s.parse(s.KeyCreate, call.data())
    return ok(await rt.keys.create(user_id, _set(req)))


async def update_key(rt: Runtime, call: Call) -> Any:
    user_id = _owner(call)
    req: s.KeyChange = s.parse(s.KeyChange, call.data())  # type: ignore[assignment]
    return ok(await rt.keys.update(user_id, req.keyId, _set(req, "keyId")))


async def rotate_key(rt: Runtime, call: Call) -> Any:
    user_id = _owner(call)
    req: s.KeyRef = s.parse(s.KeyRef, call.data())  # type: ignore[assignment]
    return ok(await rt.keys.rotate(user_id, req.keyId))


async def revoke_key(rt: Runtime, call: Call) -> Any:
    user_id = _owner(call)
    req: s.KeyRef = s.parse(s.KeyRef, call.data())  # type: ignore[assignment]
    await rt.keys.revoke(user_id, req.keyId)
    return ok({"keyId": req.keyId})


async def key_usage(rt: Runtime, call: Call) -> Any:
    req: s.KeyUsageQuery = s.parse(s.KeyUsageQuery, call.data())  # type: ignore[assignment]
    return ok(await rt.keys.usage(call.user_id, req.days))


Handler = Callable[[Runtime, Call], Awaitable[Any]]
_GET, _POST, _BOTH = frozenset({"GET"}), frozenset({"POST"}), frozenset({"GET", "POST"})


def key_routes() -> dict[str, tuple[Handler, frozenset[str], type[s._Wire] | None, str]]:
    """path -> (handler, methods, request model, summary)."""
    return {
        "/keys/list": (list_keys, _BOTH, None, "Your API keys with their limits and spend "
                       "(never the secrets)"),
        "/keys/create": (create_key, _POST, s.KeyCreate, "Create an API key (its secret is "
                         "shown once)"),
        "/keys/update": (update_key, _POST, s.KeyChange, "Change a key's name or limits "
                         "(null removes a limit)"),
        "/keys/rotate": (rotate_key, _POST, s.KeyRef, "Give a key a new secret; the old one "
                         "stops at once"),
        "/keys/revoke": (revoke_key, _POST, s.KeyRef, "Revoke a key on every node"),
        "/keys/usage": (key_usage, _BOTH, s.KeyUsageQuery, "Spend per key per UTC day"),
    }
