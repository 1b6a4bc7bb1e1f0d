"""The ceiling: a bare ASGI app answering a small JSON body, served the same way as gengate."""

from collections.abc import Awaitable, Callable
from typing import Any

BODY = b'{"status":"SUCCESS","message":"success","data":{"jobId":"0"}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
