"""The operator's pages (signed in with the admin key): users, upstream accounts, jobs
across users, webhook deliveries, incidents. Each action calls the service the admin API
calls."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from gengate.api import schemas as s
from gengate.console.user import job_view
from gengate.console.web import Page
from gengate.errors import BadRequest
from gengate.incidents import KINDS, STATES, IncidentService
from gengate.jobs import JobStatus
from gengate.passwords import check_new

__all__ = ["OPERATOR_PAGES"]


async def users(ctx: Page, created: dict[str, Any] | None = None) -> Response:
    return ctx.html("op_users.html", users=await ctx.rt.admin.list(), created=created)


async def user_create(ctx: Page) -> Response:
    balance = ctx.number("balance") if ctx.form.get("balance", "").strip() else 0
    req = s.parse(s.CreateUserRequest, {"email": ctx.field("email"), "balance": balance})
    assert isinstance(req, s.CreateUserRequest)
    password = ctx.form.get("password", "")
    if password:
        check_new(password)  # before the user exists: all or nothing
    created = await ctx.rt.admin.create_user(req.email, req.balance, req.max_queue)
    if password:
        await ctx.rt.admin.set_password(int(created["userId"]), password)
    return await users(ctx, created)


async def user_topup(ctx: Page) -> Response:
    user_id = ctx.path_id("user_id", "user")
    req = s.parse(s.TopUpRequest, {"amount": ctx.number("amount"),
                                   "note": ctx.form.get("note", "")})
    assert isinstance(req, s.TopUpRequest)
    user = await ctx.rt.admin.topup(user_id, req.amount, req.note or "console top-up")
    return ctx.redirect("/console/op/users",
                        ok=f"{user['email']}: balance is now {user['balance']}")


async def user_active(ctx: Page) -> Response:
    user_id = ctx.path_id("user_id", "user")
    active = ctx.field("active") == "1"
    user = await ctx.rt.admin.update(user_id, active=active)
    return ctx.redirect("/console/op/users", ok=f"{user['email']} "
                        f"{'enabled' if active else 'disabled'}")


async def user_password(ctx: Page) -> Response:
    raw = ctx.field("user")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) < 2**31):
        raise BadRequest("user: must be a user id")
    user_id = int(raw)
    await ctx.rt.admin.set_password(user_id, ctx.field("password"))
    return ctx.redirect("/console/op/users", ok=f"Password of user {user_id} set")


async def user_limits(ctx: Page) -> Response:
    raw = ctx.field("user")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) < 2**31):
        raise BadRequest("user: must be a user id")
    given: dict[str, Any] = {}
    for name in ("max_queue", "rate_per_second", "rate_per_minute"):
        value = ctx.form.get(name, "").strip()
        if value:
            given[name] = value  # pydantic checks it is a whole number >= 0
    if not given:
        raise BadRequest("Give at least one limit")
    req = s.parse(s.UpdateUserRequest, given)
    assert isinstance(req, s.UpdateUserRequest)
    user = await ctx.rt.admin.update(int(raw), req.max_queue, None, req.rate_per_second,
                                     req.rate_per_minute)
    return ctx.redirect("/console/op/users", ok=f"{user['email']}: limits saved")


async def accounts(ctx: Page) -> Response:
    found = await ctx.rt.pool.list()
    return ctx.html("op_accounts.html", accounts=found)


async def account_enabled(ctx: Page) -> Response:
    account_id = ctx.path_id("account_id", "account")
    enabled = ctx.field("enabled") == "1"
    view = await ctx.rt.pool.update(account_id, {"enabled": enabled})
    return ctx.redirect("/console/op/accounts", ok=f"Account {view['name']} "
                        f"{'enabled' if enabled else 'disabled'}")


async def account_check(ctx: Page) -> Response:
    """Probe the account now through the background health pass's own code: its state
    follows the answer, and the page says what it was."""
    account_id = ctx.path_id("account_id", "account")
    upstreams = ctx.rt.upstreams
    if upstreams is None:
        raise BadRequest("This process runs no upstreams to check")
    name = (await ctx.rt.pool.get(account_id))["name"]  # 404 before anything is probed
    failure = await upstreams.check_now(account_id)
    view = await ctx.rt.pool.get(account_id)
    if failure is not None:
        return ctx.redirect("/console/op/accounts",
                            error=f"Account {name} failed its check: {failure} "
                            f"(now {view['state']})")
    return ctx.redirect("/console/op/accounts",
                        ok=f"Account {name} answered its check: {view['state']}")


async def jobs(ctx: Page) -> Response:
    q = ctx.request.query_params
    status = q.get("status") or None
    product = q.get("product") or None
    raw_user = (q.get("user") or "").strip()
    if status is not None and status not in JobStatus.__members__:
        raise BadRequest(f"status: use {', '.join(JobStatus.__members__)}")
    if product is not None and product not in ctx.rt.products:
        raise BadRequest(f"product: use {', '.join(ctx.rt.products.names)}")
    if raw_user and not (raw_user.isascii() and raw_user.isdigit() and int(raw_user) < 2**31):
        raise BadRequest("user: must be a user id")
    found = await ctx.rt.store.all_jobs(int(raw_user) if raw_user else None, product, status,
                                        100)
    return ctx.html("op_jobs.html", jobs=[job_view(ctx.rt, j) for j in found],
                    status=status or "", product=product or "", user=raw_user,
                    statuses=list(JobStatus.__members__), products=ctx.rt.products.names)


async def webhooks(ctx: Page) -> Response:
    status = ctx.request.query_params.get("status") or None
    if status is not None and status not in ("pending", "delivered", "failed"):
        raise BadRequest("status: use pending, delivered or failed")
    return ctx.html("op_webhooks.html", deliveries=await ctx.rt.store.all_deliveries(status, 100),
                    status=status or "")


async def redeliver(ctx: Page) -> Response:
    delivery_id = ctx.request.path_params["delivery_id"]
    user_id = int(ctx.number("user_id"))
    await ctx.rt.hooks.redeliver(user_id, delivery_id)
    return ctx.redirect("/console/op/webhooks", ok=f"Delivery {delivery_id} queued again")


def _incidents(ctx: Page) -> IncidentService:
    assert ctx.rt.incidents is not None
    return ctx.rt.incidents


async def incidents(ctx: Page) -> Response:
    return ctx.html("op_incidents.html", incidents=await _incidents(ctx).recent(),
                    kinds=KINDS, states=STATES, products=ctx.rt.products.names)


async def incident_post(ctx: Page) -> Response:
    chosen = [p for p in ctx.rt.products.names if ctx.form.get(f"product_{p}")]
    await _incidents(ctx).post(ctx.field("kind", "incident"), ctx.field("title"), chosen,
                               ctx.field("state", "investigating"), ctx.field("message"))
    return ctx.redirect("/console/op/incidents", ok="Posted on the status page")


async def incident_update(ctx: Page) -> Response:
    incident_id = ctx.path_id("incident_id", "incident")
    state = ctx.field("state")
    await _incidents(ctx).update(incident_id, state, ctx.field("message"))
    return ctx.redirect("/console/op/incidents", ok=f"Incident {incident_id}: {state}")


OPERATOR_PAGES: list[tuple[str, Any, list[str], str | None]] = [
    ("/console/op/users", users, ["GET"], None),
    ("/console/op/users", user_create, ["POST"], "/console/op/users"),
    ("/console/op/users/{user_id}/topup", user_topup, ["POST"], "/console/op/users"),
    ("/console/op/users/{user_id}/active", user_active, ["POST"], "/console/op/users"),
    ("/console/op/users/limits", user_limits, ["POST"], "/console/op/users"),
    ("/console/op/users/password", user_password, ["POST"], "/console/op/users"),
    ("/console/op/accounts", accounts, ["GET"], None),
    ("/console/op/accounts/{account_id}/enabled", account_enabled, ["POST"],
     "/console/op/accounts"),
    ("/console/op/accounts/{account_id}/check", account_check, ["POST"],
     "/console/op/accounts"),
    ("/console/op/jobs", jobs, ["GET"], None),
    ("/console/op/webhooks", webhooks, ["GET"], None),
    ("/console/op/webhooks/{delivery_id}/redeliver", redeliver, ["POST"],
     "/console/op/webhooks"),
    ("/console/op/incidents", incidents, ["GET"], None),
    ("/console/op/incidents", incident_post, ["POST"], "/console/op/incidents"),
    ("/console/op/incidents/{incident_id}/update", incident_update, ["POST"],
     "/console/op/incidents"),
]
