"""The operator's key and money pages: any user's API keys (list, revoke, set limits, as
``/admin/users/{id}/keys``), the ledger across users with filters, and the prices (as
``/admin/prices``)."""

from __future__ import annotations

import calendar
import time
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from gengate.api import schemas as s
from gengate.console.web import Page
from gengate.errors import BadRequest, NotFound
from gengate.prices import PriceService
from gengate.quota import LedgerKind

__all__ = ["OP_KEY_PAGES"]

#: the limits the operator's form sets (blank: no limit), as KeyUpdate names them
LIMITS = (("cap_day", "capDay"), ("cap_month", "capMonth"), ("cap_total", "capTotal"),
          ("rate_per_second", "ratePerSecond"), ("rate_per_minute", "ratePerMinute"))
WHOLE = ("ratePerSecond", "ratePerMinute")
LEDGER_PAGE = 100


def _user_param(raw: str, name: str = "user") -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) < 2**31):
        raise BadRequest(f"{name}: must be a user id")
    return int(raw)


async def keys(ctx: Page) -> Response:
    users = await ctx.rt.admin.list()
    chosen = _user_param(ctx.request.query_params.get("user", ""))
    if chosen is None and users:
        chosen = int(users[0]["userId"])
    user = None
    found: list[dict[str, Any]] = []
    if chosen is not None:
        user = await ctx.rt.admin.get(chosen)  # 404 for a user that is not there
        found = await ctx.rt.admin.keys(chosen)
    return ctx.html("op_keys.html", users=users, user=user, keys=found,
                    products=ctx.rt.keys.products)


def _key_ref(ctx: Page) -> tuple[int, int]:
    return ctx.path_id("user_id", "user"), ctx.path_id("key_id", "keyId: key")


async def key_revoke(ctx: Page) -> Response:
    user_id, key_id = _key_ref(ctx)
    await ctx.rt.admin.revoke_key(user_id, key_id)
    return ctx.redirect(f"/console/op/keys?user={user_id}", ok=f"Key {key_id} revoked")


async def key_limits(ctx: Page) -> Response:
    """Every limit as the form shows it (blank: none), checked by the API's KeyUpdate."""
    user_id, key_id = _key_ref(ctx)
    fields: dict[str, Any] = {}
    if ctx.form.get("name", "").strip():
        fields["name"] = ctx.form["name"].strip()
    for form_name, field_name in LIMITS:
        if ctx.form.get(form_name, "").strip():
            value = ctx.number(form_name)
            fields[field_name] = int(value) if field_name in WHOLE else value
        else:
            fields[field_name] = None
    fields["products"] = ([p for p in ctx.rt.keys.products if ctx.form.get(f"product_{p}")]
                          if ctx.form.get("limit_products") else None)
    req = s.parse(s.KeyUpdate, fields)
    await ctx.rt.keys.update(user_id, key_id, req.model_dump(exclude_unset=True))
    return ctx.redirect(f"/console/op/keys?user={user_id}",
                        ok=f"Key {key_id}: limits saved")


# -- ledger ---------------------------------------------------------------------------------
def _day(raw: str, name: str) -> float | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return float(calendar.timegm(time.strptime(raw, "%Y-%m-%d")))
    except ValueError:
        raise BadRequest(f"{name}: `{raw[:20]}` is not a date (YYYY-MM-DD)") from None


async def ledger(ctx: Page) -> Response:
    q = ctx.request.query_params
    kind = q.get("kind", "").strip()
    if kind and kind not in {k.value for k in LedgerKind}:
        raise BadRequest(f"kind: use {', '.join(k.value for k in LedgerKind)}")
    job_id = q.get("job", "").strip()
    if len(job_id) > 64:
        raise BadRequest("job: at most 64 characters")
    since, until = _day(q.get("from", ""), "from"), _day(q.get("to", ""), "to")
    raw_page = q.get("page", "1") or "1"
    if not (raw_page.isascii() and raw_page.isdigit() and 1 <= int(raw_page) <= 100_000):
        raise BadRequest("page: must be an integer from 1 to 100000")
    page = int(raw_page)
    user_id = _user_param(q.get("user", ""))
    filters = {"user_id": user_id, "kind": kind or None, "job_id": job_id or None,
               "since": since, "until": until + 86_400 if until is not None else None}
    if user_id is not None:
        try:
            await ctx.rt.admin.get(user_id)
        except NotFound:
            raise BadRequest(f"user: no user {user_id}") from None
    found = await ctx.rt.admin.ledger_all(filters, LEDGER_PAGE, (page - 1) * LEDGER_PAGE)
    shown = {"user": q.get("user", ""), "kind": kind, "job": job_id,
             "from": q.get("from", ""), "to": q.get("to", "")}
    base = "/console/op/ledger?" + urlencode({k: v for k, v in shown.items() if v})
    return ctx.html("op_ledger.html", found=found, f=shown, kinds=[k.value for k in LedgerKind],
                    page=page, more=found["count"] > page * LEDGER_PAGE, base=base)


OP_KEY_PAGES: list[tuple[str, Any, list[str], str | None]] = [
    ("/console/op/keys", keys, ["GET"], None),
    ("/console/op/keys/{user_id}/{key_id}/revoke", key_revoke, ["POST"],
     "/console/op/keys?user={user_id}"),
    ("/console/op/keys/{user_id}/{key_id}/limits", key_limits, ["POST"],
     "/console/op/keys?user={user_id}"),
    ("/console/op/ledger", ledger, ["GET"], None),
]


# -- prices ---------------------------------------------------------------------------------
def _price_service(ctx: Page) -> PriceService:
    if ctx.rt.prices is None:
        raise BadRequest("This process keeps no prices")
    return ctx.rt.prices


async def prices(ctx: Page) -> Response:
    tables = _price_service(ctx).list()
    titles = {p.name: p.title for p in ctx.rt.products}
    grouped: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for tier, rows in tables.items():
        by_product: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_product.setdefault(row["key"].split(":", 1)[0], []).append(row)
        grouped[tier] = sorted(by_product.items())
    return ctx.html("op_prices.html", grouped=grouped, titles=titles,
                    products=ctx.rt.products.names)


async def price_set(ctx: Page) -> Response:
    req = s.parse(s.PriceSet, {"tier": ctx.field("tier", "main"), "key": ctx.field("key"),
                               "price": ctx.number("price")})
    assert isinstance(req, s.PriceSet)
    saved = await _price_service(ctx).set(req.tier, req.key, req.price)
    return ctx.redirect("/console/op/prices",
                        ok=f"{saved['key']} ({saved['tier']}) costs {saved['price']} now")


async def price_reset(ctx: Page) -> Response:
    tier, key = ctx.field("tier", "main"), ctx.field("key")
    await _price_service(ctx).remove(tier, key)
    return ctx.redirect("/console/op/prices", ok=f"{key} ({tier}): the operator's price "
                        "is removed")


OP_KEY_PAGES += [
    ("/console/op/prices", prices, ["GET"], None),
    ("/console/op/prices", price_set, ["POST"], "/console/op/prices"),
    ("/console/op/prices/reset", price_reset, ["POST"], "/console/op/prices"),
]
