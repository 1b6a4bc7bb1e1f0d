"""The TTAPI front, served as plain ASGI: every product's routes (from the product
registry) and the engine's own (jobs across products, cancel, webhooks, hosting).

These are the hot paths (submit and fetch), so they skip a framework's per-request
machinery: a dict finds the route, the body is read with a size limit, pydantic checks it,
a service does the work, and orjson writes the envelope. Errors are rendered by one
handler from the :class:`~gengate.errors.GengateError` hierarchy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gengate.access import Principal
from gengate.api import schemas as s
from gengate.api.call import Call, parse_query
from gengate.api.envelope import (
    ClientGone,
    Raw,
    ok,
    read_buffer,
    send_json,
    send_raw,
)
from gengate.api.errors import BodyShape, render_error, ttapi_error
from gengate.api.keys import key_routes
from gengate.errors import (
    BadRequest,
    MethodNotAllowed,
    RequestTimeout,
    Unauthorized,
)
from gengate.keys import KeyForbidden
from gengate.products.registry import Registry
from gengate.runtime import Runtime

__all__ = ["Call", "Route", "TtapiFront", "engine_routes", "parse_query", "routes_of"]

log = logging.getLogger("gengate.api")

Handler = Callable[[Runtime, Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    methods: frozenset[str]
    model: type[s._Wire] | None
    summary: str
    auth: bool = True
    hosted: bool = False
    #: the product whose route it is (None: the engine's own)
    product: str | None = None
    #: the error body's shape (None: the TTAPI envelope)
    error_shape: BodyShape | None = None
    #: holds the request until its job ends (stops waiting if the client goes away)
    sync: bool = False
    #: documents the 200 answer (OpenAPI); None: the envelope or the fetch body
    answer_model: Any = None
    #: takes images: may read a body up to the larger limit
    images: bool = False


async def jobs_list(rt: Runtime, call: Call) -> Any:
    """Your jobs across products, newest first."""
    data = call.data()
    req: s.JobsQuery = s.parse(s.JobsQuery, data)  # type: ignore[assignment]
    products = rt.jobs.products
    statuses: list[str] | None = None
    _key_may_see(call, req.product)
    if req.product is not None:
        product = products.get(req.product)
        if req.status is not None:
            statuses = [x.value for x in product.statuses.engine(req.status)]
            if not statuses:
                raise BadRequest(f"status: {req.product} has no status `{req.status}`; use "
                                 f"{', '.join(product.statuses.names())}")
    elif req.status is not None:
        statuses = [req.status] if req.status in _ENGINE_STATUSES else []
        if not statuses:
            raise BadRequest("status: with no product, use PENDING_QUEUE, ON_QUEUE, SUCCESS "
                             "or FAILED")
    jobs = await rt.jobs.list_jobs(call.user_id, page=req.page, limit=req.limit,
                                   status=statuses, ascending=req.order == "asc",
                                   product=req.product)
    return ok([products.of(job).list_item(job) for job in jobs])


_ENGINE_STATUSES = {"PENDING_QUEUE", "ON_QUEUE", "SUCCESS", "FAILED"}


def _key_may_see(call: Call, product: str | None) -> None:
    """A key limited to products reaches only their jobs on the engine's own routes."""
    key = call.key
    if key is None or key.products is None:
        return
    if product is None:
        raise KeyForbidden(f"{key.label} is limited to products; give `product` "
                           f"(rule: allowed products: {', '.join(key.products) or 'none'})")
    key.check_product(product)


async def jobs_cancel(rt: Runtime, call: Call) -> Any:
    """Cancel one of your jobs, whatever its product."""
    job_id = call.job_id()
    if call.key is not None and call.key.products is not None:
        _key_may_see(call, (await rt.jobs.fetch(call.user_id, job_id)).product)
    job = await rt.jobs.cancel(call.user_id, job_id)
    return ok(rt.jobs.products.fetch_body(job))


async def webhook_secret(rt: Runtime, call: Call) -> Any:
    return ok({"secret": await rt.hooks.secret(call.user_id)})


async def rotate_webhook_secret(rt: Runtime, call: Call) -> Any:
    return ok({"secret": await rt.hooks.secret(call.user_id, rotate=True)})


async def deliveries(rt: Runtime, call: Call) -> Any:
    req: s.DeliveriesQuery = s.parse(s.DeliveriesQuery, call.data())  # type: ignore[assignment]
    return ok(await rt.hooks.deliveries(call.user_id, req.jobId, req.page, req.limit))


async def redeliver(rt: Runtime, call: Call) -> Any:
    req: s.RedeliverRequest = s.parse(s.RedeliverRequest, call.data())  # type: ignore
    await rt.hooks.redeliver(call.user_id, req.deliveryId)
    return ok({"deliveryId": req.deliveryId})


async def hold_list(rt: Runtime, call: Call) -> Any:
    return ok(await rt.pool.hold_list(call.user_id))


async def hold_add(rt: Runtime, call: Call) -> Any:
    req = s.parse(s.HoldAccountAdd, call.data())
    return ok(await rt.pool.hold_add(call.user_id, req.model_dump(exclude_unset=True)))


async def hold_update(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountUpdate = s.parse(s.HoldAccountUpdate, call.data())  # type: ignore
    changes = req.model_dump(exclude_unset=True, exclude={"accountId"})
    return ok(await rt.pool.hold_update(call.user_id, req.accountId, changes))


async def hold_enable(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountRef = s.parse(s.HoldAccountRef, call.data())  # type: ignore
    return ok(await rt.pool.hold_update(call.user_id, req.accountId, {"enabled": True}))


async def hold_disable(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountRef = s.parse(s.HoldAccountRef, call.data())  # type: ignore
    return ok(await rt.pool.hold_update(call.user_id, req.accountId, {"enabled": False}))


async def hold_delete(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountRef = s.parse(s.HoldAccountRef, call.data())  # type: ignore
    await rt.pool.delete(req.accountId, call.user_id)
    return ok({"accountId": req.accountId})


async def hold_events(rt: Runtime, call: Call) -> Any:
    req: s.HoldAccountRef = s.parse(s.HoldAccountRef, call.data())  # type: ignore
    return ok(await rt.pool.events(req.accountId, call.user_id))


_GET, _POST, _BOTH = frozenset({"GET"}), frozenset({"POST"}), frozenset({"GET", "POST"})


def engine_routes() -> dict[str, Route]:
    """The engine's own paths (every product's jobs, webhooks, hosting)."""
    return {
        "/jobs/list": Route(jobs_list, _BOTH, s.JobsQuery,
                            "Your jobs across products (gengate extension)"),
        "/jobs/cancel": Route(jobs_cancel, _POST, s.FetchRequest,
                              "Cancel a job of any product (gengate extension)"),
        "/webhooks/secret": Route(webhook_secret, _GET, None,
                                  "Your webhook signing secret (Standard Webhooks)"),
        "/webhooks/secret/rotate": Route(rotate_webhook_secret, _POST, None,
                                         "Replace your webhook signing secret"),
        "/webhooks/deliveries": Route(deliveries, _BOTH, s.DeliveriesQuery,
                                      "Your webhook deliveries and their attempts"),
        "/webhooks/redeliver": Route(redeliver, _POST, s.RedeliverRequest,
                                     "Send a delivery again"),
        "/hold/account/list": Route(hold_list, _BOTH, None,
                                    "Your own upstream accounts (hosting), with useMode"),
        "/hold/account/add": Route(hold_add, _POST, s.HoldAccountAdd,
                                   "Register one of your upstream accounts"),
        "/hold/account/update": Route(hold_update, _POST, s.HoldAccountUpdate,
                                      "Change one of your accounts"),
        "/hold/account/enable": Route(hold_enable, _POST, s.HoldAccountRef,
                                      "Enable an account (clears its health flags)"),
        "/hold/account/disable": Route(hold_disable, _POST, s.HoldAccountRef,
                                       "Stop routing jobs to an account"),
        "/hold/account/delete": Route(hold_delete, _POST, s.HoldAccountRef,
                                      "Remove an account"),
        "/hold/account/events": Route(hold_events, _BOTH, s.HoldAccountRef,
                                      "An account's health changes, newest first"),
        # a user's own API keys (docs/keys.md)
        **{path: Route(handler, methods, model, summary)
           for path, (handler, methods, model, summary) in key_routes().items()},
    }


def routes_of(products: Registry) -> dict[str, Route]:
    """Every product's paths, the ``hosted`` ones again under ``/hold`` (routed only to
    the caller's own accounts), and the engine's own paths."""
    table: dict[str, Route] = {}
    for path, (product, own) in products.routes().items():
        handler: Handler = own.handler
        table[path] = Route(handler, own.methods, own.model, own.summary, own.auth,
                            product=product.name, error_shape=own.error_shape,
                            sync=own.sync, answer_model=own.answer_model, images=own.images)
        if own.hosted:
            table[f"/hold{path}"] = Route(handler, own.methods, own.model,
                                          f"{own.summary} (on your own accounts)",
                                          own.auth, hosted=True, product=product.name,
                                          error_shape=own.error_shape, sync=own.sync,
                                          answer_model=own.answer_model, images=own.images)
    for path, route in engine_routes().items():
        if path in table:
            raise ValueError(f"path {path} is claimed by a product and the engine")
        table[path] = route
    return table


async def until_gone(work: Awaitable[Any], receive: Any) -> Any:
    """``work``'s result, unless the client disconnects first: then ``work`` is cancelled
    (a synchronous route stops waiting; its job, admitted in its own transaction, goes on
    and stays fetchable) and :class:`ClientGone` is raised."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (gone, task):
            if not pending.done():
                pending.cancel()
        await asyncio.gather(gone, task, return_exceptions=True)
    if task.cancelled():
        raise ClientGone()
    return task.result()


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def admit_caller(rt: Runtime, call: Call, scope: dict[str, Any],
                       product: str | None = None) -> Principal:
    """Authenticate (401), check the key's address and product rules (403 naming the
    rule), and count the request against its rate limits (or its address's)."""
    try:
        principal = await rt.access.principal(call.api_key())
    except Unauthorized:
        await rt.limiter.check_address(rt.access.address(scope))
        raise
    key = principal.key
    if key.networks is not None:
        key.check_address(rt.access.address(scope))
    if product is not None:
        key.check_product(product)
    await rt.limiter.check_key(principal.rate_id, principal.limits)
    call.user_id = principal.user_id
    call.key = key
    return principal


class TtapiFront:
    """Serves the products' and the engine's routes; anything else goes to ``fallback``.
    A body is read up to ``max_image_body`` bytes on routes that take images,
    ``max_json_body`` on the others.

    Requests with images are served ``image_requests`` at a time (each is read, checked,
    decoded and admitted before the next one's body is read): the memory they take is
    bounded by that number, not by the number of clients. Their caller's queue and balance
    are checked before the body is read, and the body must arrive within
    ``image_body_seconds``, so that no one holds a turn for long.
    """

    def __init__(self, runtime: Callable[[], Runtime], max_image_body: int, max_json_body: int,
                 fallback: Any, products: Registry, *, image_requests: int = 2,
                 image_body_seconds: float = 60.0):
        self._runtime = runtime
        self._max_image_body = max_image_body
        self._max_json_body = max_json_body
        self._fallback = fallback
        self.routes = routes_of(products)
        self._image_turns = asyncio.Semaphore(image_requests)
        self._image_body_seconds = image_body_seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self._fallback(scope, receive, send)
            return
        try:
            body = await self._handle(route, scope, receive)
            if isinstance(body, Raw):
                await send_raw(send, 200, body.payload)
            else:
                await send_json(send, 200, body)
        except ClientGone:
            return
        except Exception as exc:  # noqa: BLE001 - every error is answered, in the envelope
            out = render_error(exc, route.error_shape or ttapi_error, where=scope["path"])
            await send_raw(send, out.status, out.payload, out.headers)

    async def _handle(self, route: Route, scope: dict[str, Any], receive: Any) -> Any:
        method = scope["method"]
        if method not in route.methods:
            allowed = ", ".join(sorted(route.methods))
            raise MethodNotAllowed(f"method {method} not allowed; use {allowed}",
                                   headers={"Allow": allowed})
        call = Call(method, scope.get("query_string", b""), scope["headers"],
                    hosted=route.hosted, sync=route.sync)
        rt = self._runtime()
        if route.auth:
            await admit_caller(rt, call, scope, route.product)
        else:
            await rt.limiter.check_address(rt.access.address(scope))
        if route.images and method == "POST":
            if route.product is not None:
                await rt.jobs.precheck_any(call.user_id, rt.jobs.products.get(route.product),
                                           scope["path"].rsplit("/", 1)[1])
            async with self._image_turns:
                try:
                    async with asyncio.timeout(self._image_body_seconds):
                        call.body = await read_buffer(scope, receive, self._max_image_body)
                except TimeoutError:
                    raise RequestTimeout(
                        f"Request body not received within {self._image_body_seconds:g} s"
                    ) from None
                if not route.sync:
                    return await route.handler(rt, call)
            # a synchronous route waits outside the turns (its decoding is bounded by
            # the engine's own decode slots)
        elif method == "POST":
            call.body = await read_buffer(scope, receive, self._max_json_body)
            if route.model is None:
                call.data()  # no fields, but a body must still be a JSON object (415, 400)
        if route.sync:
            return await until_gone(route.handler(rt, call), receive)
        return await route.handler(rt, call)

