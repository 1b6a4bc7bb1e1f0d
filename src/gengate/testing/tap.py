"""A recording pass-through for tests: a TCP server that forwards every byte between a
client and a target server unchanged and keeps each HTTP request the client sent (method,
path, headers and body bytes as they were on the wire). Requests with a
``content-length`` body only (what HTTP clients send with JSON bodies)."""

from __future__ import annotations

import asyncio
import contextlib

from gengate.testing.http import LocalServer
from gengate.testing.llm import UpstreamRequest

__all__ = ["RecordingTap"]


class RecordingTap(LocalServer):
    """``async with RecordingTap(port) as tap:`` point a client at ``tap.base_url``."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.requests: list[UpstreamRequest] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        back = asyncio.create_task(self._pipe(up_reader, writer))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(UpstreamRequest(method, path, headers, body))
                up_writer.write(head + body)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await back
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
