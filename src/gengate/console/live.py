"""Live progress of one of the signed-in user's jobs: a JSON snapshot (what the page's
script polls when it cannot stream) and a stream of server-sent events (``progress`` on
every change of status or progress, ``end`` once the job ends), read through the job
service like every other page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import JSONResponse, Response, StreamingResponse

from gengate.console.web import Page
from gengate.errors import GengateError
from gengate.jobs import Job

__all__ = ["LIVE_PAGES"]

#: seconds between two reads of a running job
INTERVAL = 0.5
#: a stream ends after this long and the browser's EventSource opens a new one by itself:
#: a server shutting down waits for open responses, so none may hold it up for long
LIFETIME = 15.0
#: the client's wait before reconnecting, in milliseconds
RETRY_MS = 500


def snapshot(job: Job) -> dict[str, Any]:
    return {"status": job.status.value, "progress": job.progress,
            "terminal": job.status.terminal,
            "message": job.message if job.status.terminal else ""}


async def job_progress(ctx: Page) -> Response:
    """One snapshot of the job (the script's fallback, polled every second)."""
    found = await ctx.rt.jobs.fetch(ctx.user_id, ctx.request.path_params["job_id"])
    return JSONResponse(snapshot(found), headers=ctx.headers())


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def job_events(ctx: Page) -> Response:
    """``text/event-stream`` of the job's progress until it ends; another user's job (or
    none) is 404 before the stream starts."""
    rt, user_id = ctx.rt, ctx.user_id
    job = await rt.jobs.fetch(user_id, ctx.request.path_params["job_id"])

    async def stream() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        until = loop.time() + LIFETIME
        yield f"retry: {RETRY_MS}\n\n".encode()
        current, last = job, None
        while True:
            shown = snapshot(current)
            if shown != last:
                yield _event("progress", shown)
                last = shown
            if current.status.terminal:
                yield _event("end", shown)
                return
            if loop.time() >= until:
                return
            await rt.jobs.ends.pause(current.id, INTERVAL)
            try:
                current = await rt.jobs.fetch(user_id, current.id)
            except GengateError as exc:  # the job went away (retention) or the store did
                yield _event("gone", {"message": exc.message})
                return

    headers = {**ctx.headers(), "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


LIVE_PAGES: list[tuple[str, Any, list[str], str | None]] = [
    ("/console/jobs/{job_id}/progress", job_progress, ["GET"], None),
    ("/console/jobs/{job_id}/events", job_events, ["GET"], None),
]
