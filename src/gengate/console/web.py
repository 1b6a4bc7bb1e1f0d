"""The console's plumbing: templates, sessions, CSRF, security headers, errors as pages.

Every page handler receives the :class:`Page` context (the runtime, the request, the
session) and calls the same services the API calls."""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gengate.clock import timestamp
from gengate.console.session import COOKIE, PRE_COOKIE, Session, SessionSigner, SignInLimiter
from gengate.credentials import load_key
from gengate.errors import BadRequest, Forbidden, GengateError, NotFound, RateLimited
from gengate.runtime import Runtime

__all__ = ["Console", "Page", "security_headers"]

log = logging.getLogger("gengate.console")

HERE = Path(__file__).parent
STATIC = HERE / "static"
#: largest form body the console reads
MAX_FORM = 64 * 1024


def security_headers(*media_origins: str) -> dict[str, str]:
    """No inline script or style, nothing from elsewhere (results' pictures, videos and
    songs from the result storage's origins too), no framing."""
    media = " ".join(["'self'", *dict.fromkeys(o for o in media_origins if o)])
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src {media} data:; media-src {media}; connect-src 'self'; "
            "form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def _money(value: float | int | None) -> str:
    if value is None:
        return ""
    return f"{value:,.3f}".rstrip("0").rstrip(".")


class Console:
    """What every page shares: one Jinja2 environment, the session signer, the sign-in
    limiter."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
        )
        self.env.filters["money"] = _money
        self.env.filters["when"] = timestamp
        self.env.filters["urlq"] = lambda v: quote(str(v), safe="")
        self.signer: SessionSigner | None = None
        self.limiter = SignInLimiter()

    def signer_for(self, rt: Runtime) -> SessionSigner:
        if self.signer is None:
            keys = load_key(rt.settings.secret_key, rt.settings.data_dir)
            self.signer = SessionSigner(keys[0].encode())
        return self.signer

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)


@dataclass
class Page:
    console: Console
    rt: Runtime
    request: Request
    session: Session | None
    form: dict[str, str]

    @property
    def user_id(self) -> int:
        assert self.session is not None
        return self.session.user_id

    def html(self, template: str, status_code: int = 200, **context: Any) -> Response:
        flash = self.request.query_params.get("ok")
        error = self.request.query_params.get("error")
        body = self.console.render(
            template, session=self.session, csrf=self.session.csrf if self.session else "",
            path=self.request.url.path, flash=flash, error=error, **context)
        return HTMLResponse(body, status_code, headers=self.headers())

    def headers(self) -> dict[str, str]:
        settings = self.rt.settings
        return security_headers(_origin(settings.resolved_public_url()),
                                _origin(settings.storage_public_url or ""))

    def redirect(self, to: str, ok: str | None = None, error: str | None = None) -> Response:
        if ok:
            to += ("&" if "?" in to else "?") + "ok=" + quote(ok)
        if error:
            to += ("&" if "?" in to else "?") + "error=" + quote(error)
        return RedirectResponse(to, 303, headers=self.headers())

    def field(self, name: str, default: str | None = None) -> str:
        value = self.form.get(name, default)
        if value is None:
            raise BadRequest(f"{name}: is required")
        return value.strip()

    def number(self, name: str) -> float:
        raw = self.field(name)
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or abs(value) > 1e12:
            raise BadRequest(f"{name}: `{raw[:40]}` is not a number") from None
        return value

    def path_id(self, name: str, what: str) -> int:
        raw = self.request.path_params[name]
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) < 2**31):
            raise NotFound(f"{what} {raw} not found")
        return int(raw)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


Handler = Callable[[Page], Awaitable[Response]]


def page(console: Console, handler: Handler, *, who: str = "user",
         back: str | None = None) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint: the session read and required (``who``: ``user``, ``operator`` or
    ``anyone``), the form read and its CSRF token checked on POST, errors shown as pages
    (or, after a POST with ``back``, as a message on the page it came from)."""

    async def endpoint(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        now = rt.jobs.clock.now()
        session = console.signer_for(rt).load(request.cookies.get(COOKIE), now)
        if session is not None and session.operator:
            from gengate.console.session import admin_tag

            if not rt.settings.admin_key or session.admin != admin_tag(rt.settings.admin_key):
                session = None
        ctx = Page(console, rt, request, session, {})
        try:
            if who != "anyone":
                if session is None or (who in ("user", "operator")
                                       and (who == "operator") != session.operator):
                    return RedirectResponse(
                        "/console/signin?next=" + quote(request.url.path), 303,
                        headers=ctx.headers())
                if not session.operator and who == "user":
                    user = await rt.jobs.user(session.user_id)
                    if not user.active:
                        return _signed_out(ctx)
            if request.method == "POST":
                ctx.form = await _form(request)
                if who != "anyone":
                    assert session is not None
                    session.check_csrf(ctx.form.get("csrf"))
                else:
                    pre = request.cookies.get(PRE_COOKIE, "")
                    given = ctx.form.get("csrf", "")
                    if not pre or not secrets.compare_digest(pre.encode(), given.encode()):
                        raise Forbidden("The form is out of date (CSRF check failed); reload "
                                        "the page and try again")
            return await handler(ctx)
        except GengateError as exc:
            if request.method == "POST" and back is not None and not isinstance(
                    exc, Forbidden | NotFound | RateLimited):
                target = back.format(**request.path_params)
                return ctx.redirect(target, error=exc.message)
            response = ctx.html("error.html", exc.status_code, status=exc.status_code,
                                message=exc.message)
            response.headers.update(exc.headers)
            return response

    return endpoint


def _signed_out(ctx: Page) -> Response:
    response = RedirectResponse("/console/signin", 303, headers=ctx.headers())
    response.delete_cookie(COOKIE, path="/console")
    return response


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise BadRequest("The console takes forms (application/x-www-form-urlencoded)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise BadRequest("The form is too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
