"""The request side of the small HTTP/1.1 servers in ``gengate.testing``: real sockets,
only as much HTTP as the fake upstreams and the webhook receiver need."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

__all__ = ["LocalServer", "read_request"]


class LocalServer:
    """A TCP server on 127.0.0.1 that ``async with`` starts and stops; ``port`` 0 (the
    default) takes a free one. Subclasses answer connections in :meth:`_serve`."""

    port: int = 0
    _server: asyncio.base_events.Server | None = None
    _handlers: set[asyncio.Task[Any]] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Any:
        self._handlers = set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                  backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):  # open keep-alive connections
            if sys.version_info >= (3, 13):  # Server.close_clients() is new in 3.13
                self._server.close_clients()
        await self._server.wait_closed()
        # connections still open end here, not when the event loop shuts down
        handlers = list(self._handlers or ())
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self._handlers is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # the server is stopping. Python 3.11's stream server asks a cancelled handler
            # for its exception, which raises in its callback: end as a handler that
            # returned instead
            writer.close()
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    """Method, path, headers (names lower-cased) and body of the next request."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, headers, body
