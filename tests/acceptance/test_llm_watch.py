"""A streamed LLM call listens for its client going away beside the stream; when that
listening fails (the server's receive raises), the failure is logged when it happens and
the call ends as a client gone. The app is driven in-process over ASGI, as a server whose
connection broke would drive it."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from gengate.config import Settings
from gengate.testing import FakeAnthropic, serve_gateway
from tests.acceptance.test_llm_relay import account, llm_settings


async def test_a_failed_disconnect_watch_is_logged(settings: Settings,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    async with FakeAnthropic(chunks=200, chunk_delay=0.01) as up, \
            serve_gateway(llm_settings(settings, account("a1", up)), with_worker=False) as gw:
        _, key = await gw.create_user(balance=100)
        caplog.set_level(logging.INFO, logger="gengate")
        body = orjson.dumps({"model": "claude-fake-1", "max_tokens": 10, "stream": True,
                             "messages": [{"role": "user", "content": "hi"}]})
        reads = 0

        async def receive() -> dict[str, Any]:
            nonlocal reads
            reads += 1
            if reads == 1:
                return {"type": "http.request", "body": body, "more_body": False}
            raise ConnectionResetError("the connection broke")

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/messages",
                 "raw_path": b"/v1/messages", "root_path": "", "query_string": b"",
                 "headers": [(b"x-api-key", key.encode()),
                             (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
        await gw.app(scope, receive, send)
        failures = [r for r in caplog.records if r.name == "gengate.background"]
        assert [r.getMessage() for r in failures] == [
            "event=task_failed task=gengate-llm-watch error=ConnectionResetError"]
        assert any(r.getMessage().startswith("event=llm_client_gone")
                   for r in caplog.records)
        # the call was settled: recorded once, nothing left frozen
        rows = (await gw.http.get("/v1/usage", headers={"x-api-key": key})).json()["data"]
        assert len(rows) == 1
        info = (await gw.http.get("/midjourney/v1/info", headers={"TT-API-KEY": key})).json()
        assert info["data"]["freeze_balance"] == 0
