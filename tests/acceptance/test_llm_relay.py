"""The LLM relay through the official ``anthropic`` and ``openai`` SDKs, unchanged but for
base URL and key, against fake upstreams over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar, cast

import anthropic
import httpx
import openai
import pytest

from gengate.config import Settings
from gengate.testing import FakeAnthropic, FakeOpenAI, Gateway, serve_gateway
from gengate.testing.llm import FakeLlmUpstream

SDK = TypeVar("SDK", anthropic.AsyncAnthropic, openai.AsyncOpenAI)
#: the SDK clients the running test made: closed after it, on its event loop (left to
#: the garbage collector, they leave sockets open and try to close on a closed loop)
_clients: list[anthropic.AsyncAnthropic | openai.AsyncOpenAI] = []


def sdk(client: SDK) -> SDK:
    _clients.append(client)
    return client


@pytest.fixture(autouse=True)
async def _close_sdk_clients() -> AsyncIterator[None]:
    yield
    while _clients:
        await _clients.pop().close()


def llm_settings(settings: Settings, *accounts: dict[str, Any]) -> Settings:
    return settings.model_copy(update={"llm_accounts": list(accounts)})


def account(name: str, up: FakeLlmUpstream, kind: str = "anthropic",
            **extra: Any) -> dict[str, Any]:
    base = up.base_url if kind == "anthropic" else f"{up.base_url}/v1"
    return {"name": name, "kind": kind, "base_url": base, "api_key": f"sk-up-{name}", **extra}


async def usage_rows(gw: Gateway, key: str) -> list[dict[str, Any]]:
    response = await gw.http.get("/v1/usage", headers={"x-api-key": key})
    assert response.status_code == 200
    return cast("list[dict[str, Any]]", response.json()["data"])


async def test_anthropic_sdk_plain_stream_tools_and_count(settings: Settings) -> None:
    async with FakeAnthropic(input_tokens=20, output_tokens=9) as up:
        s = llm_settings(settings, account("a1", up, aliases={"sonnet": "claude-fake-sonnet"}))
        async with serve_gateway(s, with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            client = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key))
            msg = await client.messages.create(
                model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "hi"}],
                extra_headers={"anthropic-beta": "fake-beta-1"})
            assert msg.content[0].type == "text" and msg.content[0].text == "word0 word1 word2 "
            assert msg.usage.input_tokens == 20 and msg.usage.output_tokens == 9
            sent = up.requests[-1]
            assert sent.json()["model"] == "claude-fake-sonnet"
            assert sent.headers["x-api-key"] == "sk-up-a1"
            assert sent.headers["anthropic-beta"] == "fake-beta-1"
            assert key not in str(sent.headers)

            async with client.messages.stream(
                model="claude-fake-sonnet", max_tokens=50, metadata={"user_id": "u1"},
                messages=[{"role": "user", "content": "hi"}],
            ) as stream:
                texts = [t async for t in stream.text_stream]
                final = await stream.get_final_message()
            assert "".join(texts) == "word0 word1 word2 "
            assert final.usage.output_tokens == 9 and final.stop_reason == "end_turn"
            assert up.requests[-1].json()["metadata"] == {"user_id": "u1"}  # passed through

            tools: list[anthropic.types.ToolParam] = [{"name": "lookup", "description": "look up",
                      "input_schema": {"type": "object", "properties": {}}}]
            msg = await client.messages.create(
                model="sonnet", max_tokens=100, tools=tools,
                messages=[{"role": "user", "content": "find"}])
            assert msg.stop_reason == "tool_use" and msg.content[0].type == "tool_use"
            assert msg.content[0].name == "lookup"
            async with client.messages.stream(
                model="sonnet", max_tokens=100, tools=tools,
                messages=[{"role": "user", "content": "find"}],
            ) as stream:
                final = await stream.get_final_message()
            assert final.content[0].type == "tool_use" and final.content[0].input == {"q": "x"}

            counted = await client.messages.count_tokens(
                model="sonnet", messages=[{"role": "user", "content": "hi"}])
            assert counted.input_tokens == 20
            listed = [m.id async for m in client.models.list()]
            assert listed == ["sonnet", "claude-fake-1", "claude-fake-2"]
            rows = await usage_rows(gw, key)
            assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
            assert all(r["input_tokens"] == 20 and r["output_tokens"] == 9 for r in rows)
            assert rows[0]["account"] == "a1"


async def test_openai_sdk_plain_stream_and_tools(settings: Settings) -> None:
    async with FakeOpenAI(input_tokens=30, output_tokens=5, cache_read_tokens=10) as up:
        s = llm_settings(settings, account("o1", up, kind="openai", models=["gpt-*"]))
        async with serve_gateway(s, with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            client = sdk(openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key=key))
            done = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            assert done.choices[0].message.content == "word0 word1 word2 "
            assert up.requests[-1].headers["authorization"] == "Bearer sk-up-o1"
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
            chunks = [c async for c in stream]
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) \
                == "word0 word1 word2 "
            assert all(c.usage is None for c in chunks)  # the usage chunk was ours only
            tools: list[openai.types.chat.ChatCompletionToolParam] = [
                {"type": "function", "function": {"name": "lookup", "parameters": {
                "type": "object", "properties": {}}}}]
            done = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], tools=tools)
            call = (done.choices[0].message.tool_calls or [])[0]
            assert call.type == "function" and call.function.name == "lookup"
            # only a pattern is configured: the upstream's own list, filtered by it
            models = await client.models.list()
            assert [m.id for m in models.data] == ["gpt-fake-1"]
            assert [r.path for r in up.requests].count("/v1/models") == 1
            await client.models.list()  # kept for a while: the upstream is not asked again
            assert [r.path for r in up.requests].count("/v1/models") == 1
            rows = await usage_rows(gw, key)
            assert len(rows) == 3
            assert {(r["input_tokens"], r["cache_read_input_tokens"], r["output_tokens"])
                    for r in rows} == {(30, 10, 5)}


@pytest.mark.parametrize("status", [429, 529])
async def test_rate_limit_and_overload_pass_through(settings: Settings, status: int) -> None:
    async with FakeAnthropic(plan=[(status, {"retry-after": "7"})]) as up:
        async with serve_gateway(llm_settings(settings, account("a1", up)),
                                 with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            response = await gw.http.post("/v1/messages", headers={"x-api-key": key}, json={
                "model": "claude-x", "max_tokens": 10, "messages": []})
            assert response.status_code == status
            assert response.headers["retry-after"] == "7"
            error = response.json()
            assert error["type"] == "error"
            assert error["error"]["type"] == ("rate_limit_error" if status == 429
                                              else "overloaded_error")
            info = (await gw.http.get("/midjourney/v1/info",
                                      headers={"TT-API-KEY": key})).json()["data"]
            assert info["balance"] == 100 and info["freeze_balance"] == 0


async def test_errors_speak_each_protocol(settings: Settings) -> None:
    async with FakeAnthropic() as up:
        s = llm_settings(settings, account("a1", up), account("o1", up, kind="openai"))
        async with serve_gateway(s, with_worker=False) as gw:
            _, key = await gw.create_user(balance=0)
            async with httpx.AsyncClient(base_url=gw.base_url) as http:
                body = {"model": "m", "max_tokens": 10, "messages": []}
                r = await http.post("/v1/messages", json=body, headers={"x-api-key": "bad"})
                assert r.status_code == 401 and r.json()["error"]["type"] == \
                    "authentication_error"
                r = await http.post("/v1/chat/completions", json=body,
                                    headers={"Authorization": "Bearer bad"})
                assert r.status_code == 401 and "message" in r.json()["error"]
                r = await http.post("/v1/messages", json=body, headers={"TT-API-KEY": key})
                assert r.status_code == 402 and r.json()["error"]["type"] == "billing_error"
                r = await http.post("/v1/chat/completions", json=body,
                                    headers={"Authorization": f"Bearer {key}"})
                assert r.status_code == 402 and r.json()["error"]["code"] == \
                    "insufficient_quota"
            with pytest.raises(anthropic.AuthenticationError):
                await sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key="nope")) \
                    .messages.create(model="m", max_tokens=5, messages=[])
            assert "sk-up-a1" not in (await gw.http.get("/openapi.json")).text


async def test_llm_calls_count_against_the_key_limits(settings: Settings) -> None:
    async with FakeAnthropic() as upstream:
        limited = settings.model_copy(update={
            "rate_per_minute": 2,
            "llm_accounts": [{"name": "a1", "kind": "anthropic", "api_key": "sk-up",
                              "base_url": upstream.base_url}]})
        async with serve_gateway(limited) as gw:
            _, key = await gw.create_user(balance=100)
            headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
            body = {"model": "claude-fake-1", "max_tokens": 16,
                    "messages": [{"role": "user", "content": "hi"}]}
            codes = [(await gw.http.post("/v1/messages", json=body, headers=headers)).status_code
                     for _ in range(3)]
            assert codes == [200, 200, 429]
            last = await gw.http.post("/v1/messages", json=body, headers=headers)
            assert last.json()["type"] == "error" and "retry-after" in last.headers
