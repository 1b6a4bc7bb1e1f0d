"""Helpers for testing against a real gengate: a server on a real socket, in-process.

``async with serve_gateway(settings) as gw:`` starts the whole application (API, worker,
local provider) under uvicorn on a free 127.0.0.1 port and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from gengate.api.app import GengateApp, create_app
from gengate.clock import Clock
from gengate.config import Settings
from gengate.products.registry import Registry
from gengate.runtime import Runtime
from gengate.testing.http import LocalServer, read_request

__all__ = ["Gateway", "ReceivedRequest", "WebhookReceiver", "free_port", "serve_gateway"]

TERMINAL = ("SUCCESS", "FAILED")
#: seconds serve_gateway keeps an idle connection open (a test's whole length)
KEEP_ALIVE = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    """A running gengate and an HTTP client pointed at it."""

    app: GengateApp
    base_url: str
    http: httpx.AsyncClient
    admin_key: str
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    _users: int = 0

    @property
    def runtime(self) -> Runtime:
        assert self.app.runtime is not None
        return self.app.runtime

    async def create_user(self, balance: float = 100, max_queue: int | None = None,
                          email: str | None = None) -> tuple[int, str]:
        """A new user over the admin API; returns (user id, API key)."""
        self._users += 1
        email = email or f"user{self._users}@example.com"
        body = {"email": email, "balance": balance}
        if max_queue is not None:
            body["max_queue"] = max_queue
        response = await self.http.post("/admin/users", json=body,
                                        headers={"Authorization": f"Bearer {self.admin_key}"})
        response.raise_for_status()
        data = response.json()["data"]
        return int(data["userId"]), str(data["apiKey"])

    def client(self, key: str) -> httpx.AsyncClient:
        """An HTTP client sending ``TT-API-KEY: key``."""
        client = httpx.AsyncClient(base_url=self.base_url, headers={"TT-API-KEY": key},
                                   timeout=30.0)
        self._clients.append(client)
        return client

    async def wait(self, client: httpx.AsyncClient, job_id: str,
                   timeout: float = 30.0) -> dict[str, Any]:
        """Poll fetch until the job ends, like TTAPI's sample code (bounded)."""
        async with asyncio.timeout(timeout):
            while True:
                response = await client.get("/midjourney/v1/fetch", params={"jobId": job_id})
                body: dict[str, Any] = response.json()
                if response.status_code == 200 and body.get("status") in TERMINAL:
                    return body
                if response.status_code not in (200, 429):
                    raise AssertionError(f"fetch answered {response.status_code}: {body}")
                await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        await self.http.aclose()


@asynccontextmanager
async def serve_gateway(settings: Settings, *, clock: Clock | None = None,
                        with_worker: bool = True, with_dispatcher: bool | None = None,
                        products: Registry | None = None,
                        notify_upstreams: bool = False) -> AsyncIterator[Gateway]:
    """gengate on a local port the system picks (``products``: a registry of the test's
    own; ``notify_upstreams``: upstreams are given this gateway's notification URL). The
    socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing and listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={
        "host": "127.0.0.1", "port": port,
        **({"upstream_notify_url": base} if notify_upstreams else {})})
    app = create_app(settings, clock=clock, with_worker=with_worker,
                     with_dispatcher=with_dispatcher, products=products)
    # as `gengate serve`: X-Forwarded-For is judged by GENGATE_TRUSTED_PROXIES
    # connections idle longer than uvicorn's 5 s are closed by the server, and a client
    # that sends on one just as it closes gets a ReadError; a test's clients pause that
    # long on a loaded machine, so here connections stay open for the test's length
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            proxy_headers=False, timeout_keep_alive=KEEP_ALIVE,
                            lifespan="on", access_log=False)
    server = PromptServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # uvicorn offers a flag, nothing to await
            if task.done():
                task.result()
                raise RuntimeError("gengate did not start")
            await asyncio.sleep(0.01)
        gateway = Gateway(app, base, httpx.AsyncClient(base_url=base, timeout=30.0),
                          settings.admin_key or "")
        try:
            yield gateway
        finally:
            await gateway.aclose()
    finally:
        server.stop()
        await task
        sock.close()  # uvicorn closed it when it started; not when it failed to


class PromptServer(uvicorn.Server):
    """uvicorn's server, stopped as soon as :meth:`stop` is called: uvicorn's own loop
    looks for ``should_exit`` every 0.1 s, which a suite that starts hundreds of servers
    waits out hundreds of times. Its once-a-second work (the Date header) goes on."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self.should_exit = True
        self._stopping.set()

    async def main_loop(self) -> None:
        ticks = 0
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), 1.0)
            except TimeoutError:
                pass
            ticks += 10  # uvicorn's ticks are 0.1 s; on_tick refreshes the Date each 10th
            if await self.on_tick(ticks):
                return


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


#: what the receiver does with one request: answer a status code, or one of these
HANG, CLOSE = "hang", "close"


class WebhookReceiver(LocalServer):
    """A real HTTP server on 127.0.0.1 that records what it receives.

    ``plan`` says how to treat the requests in order (a status code, ``"hang"`` to never
    answer, ``"close"`` to drop the connection, or ``(status, {headers})``); once it is used
    up every request gets 200. Received requests are put on :attr:`received`, so a test
    awaits them instead of sleeping.
    """

    def __init__(self, plan: list[Any] | None = None):
        self.plan = list(plan or [])
        self.received: asyncio.Queue[ReceivedRequest] = asyncio.Queue()
        self._stop = asyncio.Event()

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()  # hanging answers end now
        await super().__aexit__(*exc)

    async def next(self, timeout: float = 10.0) -> ReceivedRequest:
        async with asyncio.timeout(timeout):
            return await self.received.get()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.received.put(ReceivedRequest(*await read_request(reader)))
            action = self.plan.pop(0) if self.plan else 200
            if action == HANG:
                await self._stop.wait()
            elif action != CLOSE:
                status, extra = action if isinstance(action, tuple) else (action, {})
                lines = [f"HTTP/1.1 {status} X", "Content-Length: 2", "Connection: close",
                         *(f"{k}: {v}" for k, v in extra.items())]
                writer.write(("\r\n".join(lines) + "\r\n\r\nok").encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
from gengate.testing.llm import FakeAnthropic as FakeAnthropic  # noqa: E402
from gengate.testing.llm import FakeOpenAI as FakeOpenAI  # noqa: E402
from gengate.testing.llm import UpstreamRequest as UpstreamRequest  # noqa: E402
from gengate.testing.mjproxy import FakeMidjourneyProxy as FakeMidjourneyProxy  # noqa: E402
