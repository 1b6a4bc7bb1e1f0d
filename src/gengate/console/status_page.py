"""The public status page: each product's state now, its last 90 days (availability and
latency per day, from the jobs that ran), and the incidents and maintenance operators
posted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gengate.console.charts import Bar, bars
from gengate.console.web import Console, security_headers
from gengate.runtime import Runtime

__all__ = ["status_data", "status_page"]


async def status_data(rt: Runtime) -> dict[str, Any]:
    """What ``/status`` shows and ``/status.json`` adds to the product lines."""
    assert rt.incidents is not None
    return {"incidents": await rt.incidents.recent(), "history": await rt.status.history()}


def _tone(day: dict[str, Any]) -> str:
    availability = day["availability"]
    if availability is None:
        return "bar none"
    if availability >= 0.99:
        return "bar good"
    if availability >= 0.9:
        return "bar warn"
    return "bar bad"


def _history_chart(days: list[dict[str, Any]]) -> str:
    items = []
    for day in days:
        if day["availability"] is None:
            title = f"{day['date']}: no traffic"
        else:
            title = (f"{day['date']}: {day['availability']:.1%} of {day['finished']} jobs "
                     f"succeeded, mean {day['averageSeconds'] or 0:g} s")
        items.append(Bar(day["date"], 1.0, _tone(day), title))
    return bars(items, height=34, full=1.0, label="Availability per day, last 90 days")


def _latency_chart(days: list[dict[str, Any]]) -> str:
    items = [Bar(d["date"], d["averageSeconds"] or 0.0, "bar latency",
                 f"{d['date']}: mean {d['averageSeconds'] or 0:g} s") for d in days]
    return bars(items, height=34, label="Mean seconds per successful job, last 90 days")


def status_page(console: Console) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        snapshot = await rt.status.snapshot()
        lines = await rt.status.products_status(snapshot)
        extra = await status_data(rt)
        products = []
        for name, line in lines.items():
            days = extra["history"].get(name, [])
            with_traffic = [d for d in days if d["availability"] is not None]
            finished = sum(d["finished"] for d in with_traffic)
            ok = sum(d["availability"] * d["finished"] for d in with_traffic)
            products.append({
                "name": name, "line": line, "history": _history_chart(days),
                "latency": _latency_chart(days), "modes": await rt.status.modes(name, snapshot),
                "availability": ok / finished if finished else None,
                "first": days[0]["date"] if days else "", "last": days[-1]["date"] if days else "",
            })
        open_incidents = [i for i in extra["incidents"] if i["resolvedAt"] is None]
        body = console.render("status.html", session=None, scripts=False, csrf="", path="/status",
                              flash=None, error=None, products=products,
                              incidents=extra["incidents"], open_incidents=open_incidents,
                              window=rt.status.window // 60)
        # the public page runs no script at all
        headers = {**security_headers(), "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"}
        headers["Cache-Control"] = "no-cache"
        headers["Refresh"] = "60"
        return HTMLResponse(body, headers=headers)

    return endpoint
