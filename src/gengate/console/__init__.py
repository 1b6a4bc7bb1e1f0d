"""The web console (docs/console.md): server-rendered pages for users and operators, the
public status page, served from the package with no build step and nothing from elsewhere.

Pages call the same services as the API; the only state of their own is a signed session
cookie."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gengate.console.hosting import ACCOUNT_PAGES
from gengate.console.live import LIVE_PAGES
from gengate.console.op_keys import OP_KEY_PAGES
from gengate.console.operator import OPERATOR_PAGES
from gengate.console.playground import PLAYGROUND_PAGES
from gengate.console.session import COOKIE, PRE_COOKIE, admin_tag
from gengate.console.status_page import status_page
from gengate.console.user import USER_PAGES
from gengate.console.web import STATIC, Console, Page, page, security_headers
from gengate.errors import BadRequest, Unauthorized
from gengate.keys import KeyForbidden
from gengate.passwords import verify_password

__all__ = ["console_routes", "status_page"]


def _secure(ctx: Page) -> bool:
    return ctx.request.url.scheme == "https"


def _safe_next(raw: str | None, operator: bool) -> str:
    default = "/console/op/users" if operator else "/console/home"
    if not raw or not raw.startswith("/console/") or raw.startswith("//"):
        return default
    if raw.startswith("/console/op/") != operator:
        return default
    return raw


async def signin_form(ctx: Page) -> Response:
    if ctx.session is not None:
        return RedirectResponse(_safe_next(None, ctx.session.operator), 303)
    token = secrets.token_urlsafe(24)
    response = ctx.html("signin.html", pre=token,
                        next=ctx.request.query_params.get("next", ""),
                        method=ctx.request.query_params.get("method", "password"),
                        operator=bool(ctx.rt.settings.admin_key))
    response.set_cookie(PRE_COOKIE, token, max_age=3600, path="/console/signin",
                        httponly=True, samesite="strict", secure=_secure(ctx))
    return response


async def signin(ctx: Page) -> Response:
    rt = ctx.rt
    now = rt.jobs.clock.now()
    await ctx.console.limiter.check(rt.store, rt.limiter,
                                    rt.access.address(dict(ctx.request.scope)), now)
    method = ctx.form.get("method", "password")
    operator, user_id, admin = False, 0, ""
    if method == "password":
        found = await rt.store.password_of(ctx.field("email"))
        if not verify_password(found[1] if found else None, ctx.field("password")) or (
                found is None or not found[0].active):
            raise Unauthorized("Wrong email or password")
        user_id = found[0].id
    elif method == "key":
        principal = await rt.access.principal(ctx.field("key"))
        if principal.key.restricted:
            raise KeyForbidden(f"{principal.key.label} has limits; sign in with a key "
                               "without limits or with your password")
        user_id = principal.user_id
    elif method == "admin":
        key = rt.settings.admin_key
        if not key:
            raise Unauthorized("The operator console is off: set GENGATE_ADMIN_KEY")
        if not secrets.compare_digest(ctx.field("key").encode(), key.encode()):
            raise Unauthorized("Wrong admin key")
        operator, admin = True, admin_tag(key)
    else:
        raise BadRequest("method: use password, key or admin")
    signer = ctx.console.signer_for(rt)
    session = signer.issue(user_id, operator, now, admin)
    response = RedirectResponse(_safe_next(ctx.form.get("next"), operator), 303,
                                headers=ctx.headers())
    response.set_cookie(COOKIE, signer.dump(session), max_age=int(session.expires - now),
                        path="/console", httponly=True, samesite="lax", secure=_secure(ctx))
    response.delete_cookie(PRE_COOKIE, path="/console/signin")
    return response


async def signout(ctx: Page) -> Response:
    response = RedirectResponse("/console/signin", 303, headers=ctx.headers())
    response.delete_cookie(COOKIE, path="/console")
    return response


async def root(request: Request) -> Response:
    return RedirectResponse("/console/home", 303, headers=security_headers())


class _Static(StaticFiles):
    """The console's CSS and script, with the same headers as the pages."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update({k: v for k, v in security_headers().items()
                                 if k != "Cache-Control"})
        return response


def console_routes() -> list[BaseRoute]:
    console = Console()
    routes: list[BaseRoute] = [
        Route("/console", root),
        Route("/console/", root),
        Route("/console/signin", page(console, signin_form, who="anyone"), methods=["GET"]),
        Route("/console/signin", page(console, signin, who="anyone", back="/console/signin"),
              methods=["POST"]),
        Route("/console/signout", page(console, signout, who="signed"),
              methods=["POST"]),
        Route("/status", status_page(console)),
        Mount("/console/static", _Static(directory=STATIC), name="console-static"),
    ]
    tables = (("user", USER_PAGES + PLAYGROUND_PAGES + LIVE_PAGES + ACCOUNT_PAGES),
              ("operator", OPERATOR_PAGES + OP_KEY_PAGES))
    for who, table in tables:
        for path, handler, methods, back in table:
            routes.append(Route(path, page(console, handler, who=who, back=back),
                                methods=methods))
    return routes
