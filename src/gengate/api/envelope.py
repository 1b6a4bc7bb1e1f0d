"""The TTAPI envelope ``{"status", "message", "data"}`` and raw ASGI response helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gengate.errors import GengateError, PayloadTooLarge

__all__ = [
    "ClientGone",
    "Raw",
    "envelope_endpoint",
    "error_body",
    "json_response",
    "ok",
    "read_body",
    "read_buffer",
    "send_json",
    "send_raw",
]

JSON_HEADERS = [(b"content-type", b"application/json")]


def ok(data: Any, message: str = "success") -> dict[str, Any]:
    return {"status": "SUCCESS", "message": message, "data": data}


def error_body(exc: GengateError) -> dict[str, Any]:
    return {"status": "FAILED", "message": exc.message, "data": exc.data}



@dataclass(frozen=True, slots=True)
class Raw:
    """A JSON body that is already serialized."""

    payload: bytes


async def send_json(send: Any, status: int, body: Any,
                    headers: dict[str, str] | None = None) -> None:
    await send_raw(send, status, orjson.dumps(body), headers)


async def send_raw(send: Any, status: int, payload: bytes,
                   headers: dict[str, str] | None = None) -> None:
    raw = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
    if headers:
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def json_response(body: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def envelope_endpoint(fn: Callable[[Request], Awaitable[Any]]) -> Callable[..., Any]:
    """A Starlette endpoint answering ``fn``'s body as JSON."""

    async def endpoint(request: Request) -> Response:
        return json_response(await fn(request))

    endpoint.__name__ = fn.__name__
    endpoint.__doc__ = fn.__doc__
    return endpoint


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


async def read_body(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    """The whole request body, refused with 413 past ``limit`` bytes (checked against
    ``Content-Length`` first, then as chunks arrive)."""
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise PayloadTooLarge(f"Request body too large: limit is {limit} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body too large: limit is {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_request(request: Request, limit: int) -> bytes:
    """A Starlette route's body, read as it arrives and refused with 413 past ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body too large: limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body too large: limit is {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_buffer(scope: dict[str, Any], receive: Any, limit: int) -> bytearray:
    """Like :func:`read_body`, into one growing buffer: a body of many megabytes is held
    once, never as its chunks and their concatenation at the same time."""
    buffer = bytearray()
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise PayloadTooLarge(f"Request body too large: limit is {limit} bytes")
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if len(buffer) + len(chunk) > limit:
            raise PayloadTooLarge(f"Request body too large: limit is {limit} bytes")
        buffer += chunk
        if not message.get("more_body", False):
            return buffer
