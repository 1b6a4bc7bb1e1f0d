"""A user's pages: home (balance, spend per day, ledger), jobs, one job (live progress, its
result and its buttons), API keys, webhook deliveries.

Submits and button actions go through the API's own route handlers (the same checks,
prices and admission as ``POST /midjourney/v1/imagine``); reads go through the services."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from gengate.api import schemas as s
from gengate.api.call import Call
from gengate.api.ttapi import Route, routes_of
from gengate.console.charts import Bar, bars, days_back
from gengate.console.media import media_of
from gengate.console.web import Page
from gengate.errors import BadRequest, NotFound
from gengate.jobs import Job, JobStatus
from gengate.quota import LedgerKind, from_milli
from gengate.runtime import Runtime

__all__ = ["USER_PAGES", "call_api", "job_view", "route_model"]

_ROUTES: dict[int, dict[str, Route]] = {}
ACTION = {"midjourney": "/midjourney/v1/action"}


def _table(rt: Runtime) -> dict[str, Route]:
    table = _ROUTES.get(id(rt.products))
    if table is None:
        table = _ROUTES[id(rt.products)] = routes_of(rt.products)
    return table


def route_model(rt: Runtime, path: str) -> Any:
    """The request model of an API route (what the playground's fields come from)."""
    route = _table(rt).get(path)
    return route.model if route is not None else None


async def call_api(ctx: Page, path: str, data: dict[str, Any]) -> dict[str, Any]:
    """Run an API route's handler as the signed-in user, with ``data`` as its JSON body."""
    route = _table(ctx.rt).get(path)
    if route is None:
        raise NotFound(f"{path} is not served here")
    call = Call("POST", b"", [(b"content-type", b"application/json")],
                orjson.dumps(data), user_id=ctx.user_id)
    out: dict[str, Any] = await route.handler(ctx.rt, call)
    return out


_LABELS = (("upsample", "Upscale "), ("variation", "Vary "), ("reroll", "Reroll"))


def button_label(component: str) -> str:
    """``upsample2`` -> ``Upscale 2``; ``zoom_out_2`` -> ``Zoom out 2``."""
    for prefix, label in _LABELS:
        if component.startswith(prefix) and component[len(prefix):].isdigit():
            return label + component[len(prefix):]
        if component == prefix:
            return label
    text = component.replace("_", " ")
    return text[:1].upper() + text[1:]


def job_view(rt: Runtime, job: Job) -> dict[str, Any]:
    product = rt.products.of(job)
    item = product.list_item(job)
    return {
        **item, "job": job, "media": media_of(job), "progress": job.progress,
        "terminal": job.status.terminal, "title": product.title,
        "components": [(c, button_label(c)) for c in (job.result or {}).get("components") or []
                       if isinstance(c, str)] if job.status is JobStatus.SUCCESS else [],
        "actionable": job.product in ACTION,
    }


# -- home -----------------------------------------------------------------------------------
async def home(ctx: Page) -> Response:
    user = await ctx.rt.jobs.user(ctx.user_id)
    ledger = await ctx.rt.admin.ledger(ctx.user_id, limit=500)
    now = ctx.rt.jobs.clock.now()
    days = days_back(now, 30)
    spend = dict.fromkeys(days, 0.0)
    settled = [e for e in await ctx.rt.store.ledger(ctx.user_id, 2000, 0)
               if e.kind == LedgerKind.SETTLE.value and _day(e.created_at) in spend]
    jobs_of = await ctx.rt.store.get_jobs([e.job_id for e in settled if e.job_id])
    per_product: dict[str, float] = {}
    for entry in settled:
        amount = abs(from_milli(entry.amount))
        spend[_day(entry.created_at)] += amount
        found = jobs_of.get(entry.job_id or "")
        title = ctx.rt.products.of(found).title if found is not None and (
            found.product in ctx.rt.products) else "LLM and other"
        per_product[title] = per_product.get(title, 0.0) + amount
    chart = bars([Bar(d, v, title=f"{d}: spent {v:g}") for d, v in spend.items()],
                 label="Spend per day, last 30 days")
    return ctx.html("home.html", user=user, balance=from_milli(user.balance),
                    frozen=from_milli(user.freeze_balance), chart=chart,
                    spent30=sum(spend.values()), first_day=days[0], last_day=days[-1],
                    per_product=sorted(per_product.items(), key=lambda kv: -kv[1]),
                    entries=ledger["entries"][:50], totals=ledger["totals"])


def _day(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


# -- jobs -----------------------------------------------------------------------------------
async def jobs(ctx: Page) -> Response:
    status = ctx.request.query_params.get("status") or None
    product = ctx.request.query_params.get("product") or None
    if status is not None and status not in JobStatus.__members__:
        raise BadRequest(f"status: use {', '.join(JobStatus.__members__)}")
    if product is not None and product not in ctx.rt.products:
        raise BadRequest(f"product: use {', '.join(ctx.rt.products.names)}")
    found = await ctx.rt.jobs.list_jobs(ctx.user_id, page=1, limit=60, status=status,
                                        ascending=False, product=product)
    return ctx.html("jobs.html", jobs=[job_view(ctx.rt, j) for j in found],
                    status=status or "", product=product or "",
                    statuses=list(JobStatus.__members__), products=ctx.rt.products.names)


async def _own_job(ctx: Page) -> Job:
    return await ctx.rt.jobs.fetch(ctx.user_id, ctx.request.path_params["job_id"])


async def job(ctx: Page) -> Response:
    found = await _own_job(ctx)
    parent = None
    if found.parent_id:
        try:
            parent = await ctx.rt.jobs.fetch(ctx.user_id, found.parent_id)
        except NotFound:
            parent = None
    return ctx.html("job.html", j=job_view(ctx.rt, found), parent=parent)


async def job_action(ctx: Page) -> Response:
    found = await _own_job(ctx)
    path = ACTION.get(found.product)
    if path is None:
        raise BadRequest(f"{found.product} jobs have no buttons")
    out = await call_api(ctx, path, {"jobId": found.id, "action": ctx.field("action")})
    return ctx.redirect(f"/console/jobs/{out['data']['jobId']}", ok="Submitted")


# -- keys -----------------------------------------------------------------------------------
async def keys(ctx: Page, created: dict[str, Any] | None = None) -> Response:
    return ctx.html("keys.html", keys=await ctx.rt.keys.list(ctx.user_id), created=created,
                    products=ctx.rt.products.names)


async def key_create(ctx: Page) -> Response:
    fields: dict[str, Any] = {}
    name = ctx.form.get("name", "").strip()
    if name:
        fields["name"] = name
    chosen = [p for p in ctx.rt.products.names if ctx.form.get(f"product_{p}")]
    if ctx.form.get("limit_products"):
        fields["products"] = chosen
    for form_name, field_name in (("cap_day", "capDay"), ("cap_month", "capMonth"),
                                  ("rate_per_minute", "ratePerMinute")):
        raw = ctx.form.get(form_name, "").strip()
        if raw:
            value = ctx.number(form_name)
            fields[field_name] = int(value) if field_name == "ratePerMinute" else value
    # the API's own checks of the same fields (POST /keys/create)
    req = s.parse(s.KeyCreate, fields)
    created = await ctx.rt.keys.create(ctx.user_id, req.model_dump(exclude_unset=True))
    response = await keys(ctx, created)
    return response


async def key_revoke(ctx: Page) -> Response:
    key_id = ctx.path_id("key_id", "key")
    await ctx.rt.keys.revoke(ctx.user_id, key_id)
    return ctx.redirect("/console/keys", ok=f"Key {key_id} revoked")


# -- webhooks -------------------------------------------------------------------------------
async def webhooks(ctx: Page) -> Response:
    found = await ctx.rt.hooks.deliveries(ctx.user_id, None, 1, 50)
    return ctx.html("webhooks.html", deliveries=found,
                    secret=await ctx.rt.hooks.secret(ctx.user_id))


async def rotate_secret(ctx: Page) -> Response:
    await ctx.rt.hooks.secret(ctx.user_id, rotate=True)
    return ctx.redirect("/console/webhooks", ok="New signing secret")


async def redeliver(ctx: Page) -> Response:
    delivery_id = ctx.request.path_params["delivery_id"]
    await ctx.rt.hooks.redeliver(ctx.user_id, delivery_id)
    return ctx.redirect("/console/webhooks", ok="Queued for delivery again")


USER_PAGES: list[tuple[str, Any, list[str], str | None]] = [
    ("/console/home", home, ["GET"], None),
    ("/console/jobs", jobs, ["GET"], None),
    ("/console/jobs/{job_id}", job, ["GET"], None),
    ("/console/jobs/{job_id}/action", job_action, ["POST"], "/console/jobs/{job_id}"),
    ("/console/keys", keys, ["GET"], None),
    ("/console/keys", key_create, ["POST"], "/console/keys"),
    ("/console/keys/{key_id}/revoke", key_revoke, ["POST"], "/console/keys"),
    ("/console/webhooks", webhooks, ["GET"], None),
    ("/console/webhooks/secret/rotate", rotate_secret, ["POST"], "/console/webhooks"),
    ("/console/webhooks/{delivery_id}/redeliver", redeliver, ["POST"], "/console/webhooks"),
]
