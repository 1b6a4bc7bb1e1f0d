"""Public pages: ``/status.json``, ``/metrics``, ``/healthz``, ``/openapi.json`` (the
HTML status page is the console's: :mod:`gengate.console.status_page`)."""

from __future__ import annotations

import secrets
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from gengate.api.envelope import json_response, ok
from gengate.api.openapi import openapi_document
from gengate.console.status_page import status_data
from gengate.errors import Unauthorized
from gengate.runtime import Runtime

__all__ = ["healthz", "metrics", "openapi", "status_json"]


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def status_json(request: Request) -> Response:
    """The product lines in ``data`` (as before), and beside them the incidents and each
    product's 90-day history."""
    rt = _rt(request)
    return json_response({**ok(await rt.status.products_status()), **await status_data(rt)})


async def healthz(request: Request) -> Response:
    rt = _rt(request)
    try:
        await rt.status.live_jobs()
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return json_response({"status": "FAILED", "message": f"database: {type(exc).__name__}",
                              "data": None}, 503)
    redis = None
    if rt.limiter.shared:
        try:
            redis = "ok" if await rt.limiter.ping() else "unreachable"
        except Exception as exc:  # noqa: BLE001
            redis = f"unreachable: {type(exc).__name__}"
        if redis != "ok":
            return json_response({"status": "FAILED", "message": f"redis: {redis}",
                                  "data": None}, 503)
    worker: dict[str, Any] | None = None
    if rt.worker is not None:
        worker = {"owner": rt.worker.owner, "running": rt.worker.busy}
    return json_response(ok({"database": "ok", "redis": redis, "worker": worker}))


def _check_metrics_token(request: Request, token: str) -> None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(),
                                                                token.encode()):
        raise Unauthorized("/metrics needs Authorization: Bearer <GENGATE_METRICS_TOKEN>",
                           headers={"WWW-Authenticate": "Bearer"})


async def metrics(request: Request) -> Response:
    rt = _rt(request)
    if rt.settings.metrics_token:
        _check_metrics_token(request, rt.settings.metrics_token)
    registry = CollectorRegistry()
    jobs = Gauge("gengate_jobs", "Live jobs by product, mode and status",
                 ["product", "mode", "status"], registry=registry)
    for row in await rt.status.live_jobs():
        jobs.labels(row.product, row.mode, row.status).set(row.n)
    lines = await rt.status.products_status()
    avg = Gauge("gengate_job_average_seconds", "Mean submit-to-finish time in the window",
                ["product"], registry=registry)
    rate = Gauge("gengate_job_success_ratio", "Share of finished jobs that succeeded",
                 ["product"], registry=registry)
    up = Gauge("gengate_product_status", "A product's status code (200 running, 500 "
               "degraded, 503 unavailable)", ["product"], registry=registry)
    for name, m in lines.items():
        avg.labels(name).set(m["averageExecute"])
        up.labels(name).set(m["status"])
        if m["successRate"] is not None:
            rate.labels(name).set(m["successRate"])
    hooks = await rt.status.webhook_counts()
    webhooks = Gauge("gengate_webhook_deliveries", "Webhook notifications in the delivery log "
                     "by outcome (retried: attempts after the first)", ["outcome"],
                     registry=registry)
    for outcome, key in (("delivered", "delivered"), ("given_up", "failed"),
                         ("pending", "pending"), ("retried", "retried")):
        webhooks.labels(outcome).set(hooks[key])
    _account_gauges(registry, *await rt.status.accounts())
    if rt.worker is not None:
        Gauge("gengate_worker_running_jobs", "Jobs this process's worker runs now",
              registry=registry).set(rt.worker.busy)
    body = generate_latest(registry) + generate_latest(rt.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _account_gauges(registry: CollectorRegistry, accounts: list[Any],
                    busy: dict[tuple[int, str], int]) -> None:
    """The operator's accounts one by one; users' hosted accounts only as counts."""
    slots = Gauge("gengate_account_slots", "Concurrent jobs an operator account takes, by mode",
                  ["account", "mode"], registry=registry)
    used = Gauge("gengate_account_slots_in_use", "Jobs running on an operator account, by mode",
                 ["account", "mode"], registry=registry)
    state = Gauge("gengate_account_state", "1 for an operator account's current health state",
                  ["account", "state"], registry=registry)
    hosted = Gauge("gengate_hosted_accounts", "Users' hosted accounts by health state",
                   ["state"], registry=registry)
    hosted_counts: dict[str, int] = {}
    for account in accounts:
        current = account.state.value if account.enabled else "disabled"
        if account.owner_id is not None:
            hosted_counts[current] = hosted_counts.get(current, 0) + 1
            continue
        state.labels(account.name, current).set(1)
        for mode, count in account.slots.items():
            slots.labels(account.name, mode).set(count)
            used.labels(account.name, mode).set(busy.get((account.id, mode), 0))
    for name, count in hosted_counts.items():
        hosted.labels(name).set(count)


async def openapi(request: Request) -> Response:
    doc = request.app.state.openapi
    if doc is None:
        doc = request.app.state.openapi = openapi_document(_rt(request).products)
    return json_response(doc)
