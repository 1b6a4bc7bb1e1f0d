"""The ASGI application: the TTAPI front first, Starlette for everything else."""

from __future__ import annotations

import gc
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from gengate.api import pages
from gengate.api.admin import ADMIN_ROUTES
from gengate.api.cdn import serve_result
from gengate.api.envelope import send_raw
from gengate.api.errors import render_error
from gengate.api.llm import LlmFront
from gengate.api.ttapi import TtapiFront
from gengate.api.upstream import upstream_notify
from gengate.api.videos import VideoFront
from gengate.clock import Clock
from gengate.config import Settings
from gengate.console import console_routes
from gengate.errors import GengateError
from gengate.products.registry import Registry, builtin
from gengate.runtime import Runtime

__all__ = ["GengateApp", "create_app"]

log = logging.getLogger("gengate.api")


async def _error(request: Request, exc: Exception) -> Response:
    out = render_error(exc, where=request.url.path)
    return Response(out.payload, out.status, out.headers, media_type="application/json")


def _allowed(request: Request) -> str:
    """Every method some route of the path takes (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own (no such path, method): as the same kind of error."""
    assert isinstance(exc, HTTPException)
    message = "Not found" if exc.status_code == 404 else str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request)
    error = GengateError(message, headers=headers)
    error.status_code = exc.status_code
    return await _error(request, error)


async def _answered(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Run ``app`` so that an exception still ends in a whole 500 envelope and is not
    raised to the server, which would drop the keep-alive connection. (Starlette answers
    500 through :func:`_error` and then raises again.) Only a crash in the middle of a
    response body, which cannot be taken back, is left to the server."""
    state = {"started": False, "done": False}

    async def tracked(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            state["started"] = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            state["done"] = True
        await send(message)

    try:
        await app(scope, receive, tracked)
    except Exception as exc:
        if state["done"]:
            return  # answered (and logged by the handler that answered)
        if state["started"]:
            raise
        out = render_error(exc, where=str(scope.get("path")))
        await send_raw(send, out.status, out.payload, out.headers)


class GengateApp:
    """Builds its :class:`Runtime` on ASGI lifespan start-up and closes it on shutdown."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 with_worker: bool = True, with_dispatcher: bool | None = None,
                 products: Registry | None = None):
        self.settings = settings
        self.clock = clock
        self.with_worker = with_worker
        self.with_dispatcher = with_dispatcher
        self.runtime: Runtime | None = None
        self.web = Starlette(
            routes=[
                *ADMIN_ROUTES,
                *console_routes(),
                Route("/status.json", pages.status_json),
                Route("/healthz", pages.healthz),
                Route("/metrics", pages.metrics),
                Route("/openapi.json", pages.openapi),
                Route("/cdn/{key:path}", serve_result, methods=["GET", "HEAD"], name="cdn"),
                Route("/upstream/notify/{account_id:int}/{token}", upstream_notify,
                      methods=["POST"]),
            ],
            exception_handlers={
                GengateError: _error,
                HTTPException: _http_error,
                Exception: _error,
            },
        )
        self.web.state.openapi = None
        self.products = products if products is not None else builtin(settings)
        # the two fronts answer their own crashes; Starlette's routes get the guard
        self.front = LlmFront(self._rt, settings.max_body_bytes,
                              VideoFront(self._rt, settings.max_body_bytes,
                                         TtapiFront(self._rt, settings.max_body_bytes,
                                                    settings.max_json_body_bytes, self._web,
                                                    self.products,
                                                    image_requests=settings.image_requests,
                                                    image_body_seconds=settings.image_body_seconds),
                                         self.products))

    async def _web(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await _answered(self.web, scope, receive, send)
        else:
            await self.web(scope, receive, send)

    def _rt(self) -> Runtime:
        if self.runtime is None:
            raise GengateError("gengate is starting up")
        return self.runtime

    async def startup(self) -> None:
        self.runtime = await Runtime.start(self.settings, clock=self.clock,
                                           with_worker=self.with_worker,
                                           with_dispatcher=self.with_dispatcher,
                                           products=self.products)
        self.web.state.runtime = self.runtime
        # what start-up built lives as long as the process: keep it out of the GC's scans
        gc.collect()
        gc.freeze()

    async def shutdown(self) -> None:
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.front(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("event=startup_failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings | None = None, **kwargs: Any) -> GengateApp:
    return GengateApp(settings or Settings(), **kwargs)
