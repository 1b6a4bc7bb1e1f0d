"""A user's own pages beyond jobs: his hosting accounts (his own upstream Midjourney
accounts, docs/hosting.md) through the API's ``/hold/account/*`` route handlers, and his LLM
usage (requests, tokens, spend) through the relay's usage history, as ``GET /v1/usage``."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from gengate.console.user import call_api
from gengate.console.web import Page
from gengate.errors import BadRequest, Conflict, NotFound
from gengate.llm.relay import usage_history, usage_totals
from gengate.quota import from_milli

__all__ = ["ACCOUNT_PAGES"]

#: TTAPI's useMode numbers
USE_MODES = ((1, "relax"), (2, "fast"), (3, "turbo"))
PROTOCOLS = ("auto", "trueai", "novicezk")
_TEXT = ("name", "baseUrl", "secret", "apiKey", "instanceId")
#: what a refused form keeps (never a credential)
_KEPT = ("name", "baseUrl", "instanceId", "provider", "protocol", "useMode", "maxConcurrency")
#: rows per page of the LLM usage list
USAGE_PAGE = 50
DAY = 86_400


def _account_fields(ctx: Page, creating: bool) -> dict[str, Any]:
    """The form as the route's JSON: blanks left out (on edit: unchanged), numbers as
    numbers where they are numbers (the route's model says what is wrong otherwise)."""
    out: dict[str, Any] = {}
    for name in _TEXT:
        value = ctx.form.get(name, "").strip()
        if value:
            out[name] = value
    for name in ("provider", "protocol"):
        value = ctx.form.get(name, "").strip()
        if value and (creating or name != "provider"):
            out[name] = value
    for name in ("useMode", "maxConcurrency"):
        value = ctx.form.get(name, "").strip()
        if value:
            out[name] = int(value) if value.isascii() and value.isdigit() else value
    if creating:
        out["enabled"] = bool(ctx.form.get("enabled"))
    return out


def _account_id(ctx: Page) -> int:
    return ctx.path_id("account_id", "account")


async def _own(ctx: Page, account_id: int) -> dict[str, Any]:
    """One of the user's accounts (404 ``accountId: account N not found`` otherwise)."""
    events = await call_api(ctx, "/hold/account/events", {"accountId": account_id})
    listed = await call_api(ctx, "/hold/account/list", {})
    found = next((a for a in listed["data"] if a["accountId"] == account_id), None)
    if found is None:  # deleted between the two reads
        raise NotFound(f"accountId: account {account_id} not found")
    return {**found, "events": events["data"]}


async def hosting(ctx: Page) -> Response:
    listed = await call_api(ctx, "/hold/account/list", {})
    form = {k: ctx.request.query_params.get(k, "") for k in _KEPT}
    return ctx.html("hosting.html", accounts=listed["data"], use_modes=USE_MODES,
                    protocols=PROTOCOLS, form=form)


async def hosting_add(ctx: Page) -> Response:
    try:
        out = await call_api(ctx, "/hold/account/add", _account_fields(ctx, creating=True))
    except (BadRequest, Conflict) as exc:  # back to the form, what was typed kept (no secret)
        kept = {k: ctx.form.get(k, "")[:300] for k in _KEPT if ctx.form.get(k)}
        return ctx.redirect("/console/hosting?" + urlencode(kept), error=exc.message)
    return ctx.redirect("/console/hosting", ok=f"Account {out['data']['name']} added")


async def hosting_account(ctx: Page) -> Response:
    account = await _own(ctx, _account_id(ctx))
    return ctx.html("hosting_account.html", a=account, use_modes=USE_MODES,
                    protocols=PROTOCOLS)


async def hosting_update(ctx: Page) -> Response:
    account_id = _account_id(ctx)
    changes = _account_fields(ctx, creating=False)
    if ctx.form.get("clear_instance"):
        changes["instanceId"] = None
    out = await call_api(ctx, "/hold/account/update", {"accountId": account_id, **changes})
    return ctx.redirect(f"/console/hosting/{account_id}",
                        ok=f"Account {out['data']['name']} saved")


async def hosting_enabled(ctx: Page) -> Response:
    account_id = _account_id(ctx)
    enabled = ctx.field("enabled") == "1"
    path = "/hold/account/enable" if enabled else "/hold/account/disable"
    out = await call_api(ctx, path, {"accountId": account_id})
    return ctx.redirect("/console/hosting", ok=f"Account {out['data']['name']} "
                        f"{'enabled' if enabled else 'disabled'}")


async def hosting_delete(ctx: Page) -> Response:
    account_id = _account_id(ctx)
    await call_api(ctx, "/hold/account/delete", {"accountId": account_id})
    return ctx.redirect("/console/hosting", ok=f"Account {account_id} deleted")


# -- LLM usage ------------------------------------------------------------------------------
def _page(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1_000_000):
        raise BadRequest("page: must be an integer from 1 to 1000000")
    return int(raw)


async def llm_usage(ctx: Page) -> Response:
    page = _page(ctx.request.query_params.get("page"))
    now = ctx.rt.jobs.clock.now()
    rows = await usage_history(ctx.rt.store, ctx.user_id, page, USAGE_PAGE, peek=1)
    models = await usage_totals(ctx.rt.store, ctx.user_id, now - 30 * DAY)
    total = {key: sum(m[key] for m in models)
             for key in ("calls", "failed", "input_tokens", "output_tokens",
                         "cache_write_tokens", "cache_read_tokens", "cost")}
    return ctx.html(
        "llm_usage.html", rows=rows[:USAGE_PAGE], page=page, more=len(rows) > USAGE_PAGE,
        models=models, total=total, money=from_milli, tokens=_tokens,
        llm_on=ctx.rt.relay is not None)


def _tokens(n: int) -> str:
    """``1234567`` -> ``1.23M``; small counts as they are."""
    if n < 10_000:
        return f"{n:,}"
    for size, unit in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if n >= size:
            value = n / size
            digits = 2 if value < 10 else 1 if value < 100 else 0
            text = f"{math.floor(value * 10**digits) / 10**digits:.{digits}f}"
            return (text.rstrip("0").rstrip(".") if "." in text else text) + unit
    return str(n)


ACCOUNT_PAGES: list[tuple[str, Any, list[str], str | None]] = [
    ("/console/hosting", hosting, ["GET"], None),
    ("/console/hosting", hosting_add, ["POST"], "/console/hosting"),
    ("/console/hosting/{account_id}", hosting_account, ["GET"], None),
    ("/console/hosting/{account_id}", hosting_update, ["POST"],
     "/console/hosting/{account_id}"),
    ("/console/hosting/{account_id}/enabled", hosting_enabled, ["POST"], "/console/hosting"),
    ("/console/hosting/{account_id}/delete", hosting_delete, ["POST"], "/console/hosting"),
    ("/console/llm", llm_usage, ["GET"], None),
]
