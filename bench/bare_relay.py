"""The relay anchor: a bare ASGI app that forwards each request body to the upstream with
one pooled aiohttp session and answers with the upstream's body. No auth, no billing, no
streaming support: what any Python relay costs before it does a gateway's work."""

from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ.get("BARE_RELAY_UPSTREAM", "http://127.0.0.1:9")
_session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":  # readiness
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]
               if k in (b"content-type", b"x-api-key", b"anthropic-version")}
    assert _session is not None
    async with _session.post(UPSTREAM + scope["path"], data=body, headers=headers) as response:
        payload = await response.read()
        status = response.status
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
