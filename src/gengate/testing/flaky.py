"""A flaky hop in front of a real gengate: it answers the first requests of a path with
``503 Service Unavailable`` (what a load balancer says while a node restarts, RFC 9110
15.6.4: the request was not processed) and passes every other request on unchanged. It
records what it saw, so a test can tell a client's retries apart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from gengate.testing.http import LocalServer, read_request

__all__ = ["FlakyHop", "Seen"]


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int


@dataclass
class FlakyHop(LocalServer):
    """``async with FlakyHop(target, fail={"/midjourney/v1/imagine": 1})``."""

    target: str
    fail: dict[str, int] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with httpx.AsyncClient(base_url=self.target) as http:
            while not reader.at_eof():
                try:
                    method, path, headers, body = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                route = path.split("?", 1)[0]
                if self.fail.get(route, 0) > 0:
                    self.fail[route] -= 1
                    status, answer, kind = 503, b'{"message":"node restarting"}', \
                        "application/json"
                else:
                    sent = {k: v for k, v in headers.items()
                            if k not in ("host", "content-length", "connection")}
                    response = await http.request(method, path, content=body, headers=sent)
                    status, answer = response.status_code, response.content
                    kind = response.headers.get("content-type", "application/json")
                self.seen.append(Seen(method, route, headers, status))
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\n"
                             f"content-length: {len(answer)}\r\n\r\n".encode() + answer)
                await writer.drain()
        writer.close()
