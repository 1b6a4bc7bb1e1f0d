"""The request side of the small HTTP/1.1 servers in ``gengate.testing``: real sockets,
only as much HTTP as the fake upstreams and the webhook receiver need."""

from __future__ import annotations

import asyncio

__all__ = ["read_request"]


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    """Method, path, headers (names lower-cased) and body of the next request."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, headers, body
