"""LLM relay billing, failover, mid-stream drops, disconnects and usage retention."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import anthropic
import httpx
import openai
import pytest

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.testing import FakeAnthropic, FakeOpenAI, Gateway, serve_gateway
from tests.acceptance.test_billing import _ledger
from tests.acceptance.test_llm_relay import (  # noqa: F401 - the fixture closes sdk()'s clients
    _close_sdk_clients,
    account,
    llm_settings,
    sdk,
    usage_rows,
)

PRICE = {"claude-fake-*": {"input": 300, "output": 1500, "cache_write": 375, "cache_read": 30}}
MSG: list[Any] = [{"role": "user", "content": "hi"}]  # passed to both SDKs


def _balanced(ledger: dict[str, Any]) -> None:
    """balance and freeze_balance equal what the ledger says (exact in milli-quota)."""
    t, user = ledger["totals"], ledger["user"]
    milli = {k: round(v * 1000) for k, v in t.items()}
    assert round(user["balance"] * 1000) == \
        milli["topup"] - milli["freeze"] + milli["refund"] - milli["overage"]
    assert round(user["freeze_balance"] * 1000) == \
        milli["freeze"] - milli["settle"] - milli["refund"]


async def _info(gw: Gateway, key: str) -> dict[str, Any]:
    response = await gw.http.get("/midjourney/v1/info", headers={"TT-API-KEY": key})
    return cast("dict[str, Any]", response.json()["data"])


async def test_every_token_class_is_billed_once_plain_and_streamed(settings: Settings) -> None:
    async with FakeAnthropic(input_tokens=1000, output_tokens=2000, cache_write_tokens=4000,
                             cache_read_tokens=10000) as up:
        s = llm_settings(settings, account("a1", up)).model_copy(update={"llm_prices": PRICE})
        async with serve_gateway(s, with_worker=False) as gw:
            user_id, key = await gw.create_user(balance=100)
            client = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key))
            await client.messages.create(model="claude-fake-1", max_tokens=4000, messages=MSG)
            async with client.messages.stream(model="claude-fake-1", max_tokens=4000,
                                              messages=MSG) as stream:
                final = await stream.get_final_message()
            assert final.usage.cache_read_input_tokens == 10000
            # (1000*300 + 2000*1500 + 4000*375 + 10000*30) / 1e6 = 5.1 quota per call
            info = await _info(gw, key)
            assert info["balance"] == pytest.approx(100 - 2 * 5.1) and info["freeze_balance"] == 0
            rows = await usage_rows(gw, key)
            assert [r["cost"] for r in rows] == [5.1, 5.1]
            assert rows[0]["cache_creation_input_tokens"] == 4000
            ledger = await _ledger(gw, user_id)
            _balanced(ledger)
            assert ledger["totals"]["settle"] == pytest.approx(10.2)


async def test_concurrent_calls_never_overdraw(settings: Settings) -> None:
    async with FakeAnthropic(input_tokens=10, output_tokens=10, first_byte_delay=0.2) as up:
        s = llm_settings(settings, account("a1", up)).model_copy(update={"llm_prices": PRICE})
        async with serve_gateway(s, with_worker=False) as gw:
            user_id, key = await gw.create_user(balance=5)
            body = {"model": "claude-fake-1", "max_tokens": 1000, "messages": MSG}
            calls = [gw.http.post("/v1/messages", json=body, headers={"x-api-key": key})
                     for _ in range(20)]
            codes = [r.status_code for r in await asyncio.gather(*calls)]
            ok = codes.count(200)
            assert 1 <= ok < 20 and codes.count(402) == 20 - ok
            info = await _info(gw, key)
            assert info["freeze_balance"] == 0
            assert info["balance"] == pytest.approx(5 - ok * 0.018)
            _balanced(await _ledger(gw, user_id))


async def test_failover_before_the_first_byte(settings: Settings) -> None:
    async with FakeAnthropic(plan=[500, "close", "close", 503]) as bad, FakeAnthropic() as good:
        s = llm_settings(settings, account("bad", bad, priority=0),
                         account("good", good, priority=1)).model_copy(
            update={"llm_cooldown_seconds": 0})  # so the stream tries "bad" again too
        async with serve_gateway(s, with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            client = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key,
                                                  max_retries=0))
            msg = await client.messages.create(model="claude-fake-1", max_tokens=10,
                                               messages=MSG)
            assert msg.content[0].type == "text" and msg.content[0].text
            async with client.messages.stream(model="claude-fake-1", max_tokens=10,
                                              messages=MSG) as stream:
                assert "".join([t async for t in stream.text_stream]) == "word0 word1 word2 "
            assert len(bad.requests) == 4 and len(good.requests) == 2
            assert [r["account"] for r in await usage_rows(gw, key)] == ["good", "good"]


async def test_mid_stream_drop_is_the_protocols_error_event(settings: Settings) -> None:
    async with FakeAnthropic(plan=["drop"], input_tokens=50) as up, \
            FakeOpenAI(plan=["drop"]) as oup:
        s = llm_settings(settings, account("a1", up), account("o1", oup, kind="openai"))
        async with serve_gateway(s, with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            client = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key))
            with pytest.raises(anthropic.APIStatusError) as caught:
                async with client.messages.stream(model="claude-fake-1", max_tokens=10,
                                                  messages=MSG) as stream:
                    async for _ in stream:
                        pass
            assert "mid-stream" in str(caught.value)
            oclient = sdk(openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key=key))
            with pytest.raises(openai.APIError):
                async for _ in await oclient.chat.completions.create(
                        model="gpt-x", messages=MSG, stream=True):
                    pass
            rows = await usage_rows(gw, key)
            assert {r["status"] for r in rows} == {"dropped"}
            assert rows[-1]["input_tokens"] == 50  # what message_start reported is billed


#: a streamed Messages call
STREAM = {"model": "claude-fake-1", "max_tokens": 10, "messages": MSG, "stream": True}


async def test_a_disconnecting_client_stops_the_upstream_call(settings: Settings) -> None:
    async with FakeAnthropic(chunks=2000, chunk_delay=0.01) as up:
        async with serve_gateway(llm_settings(settings, account("a1", up)),
                                 with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            body = STREAM
            async with httpx.AsyncClient(base_url=gw.base_url) as http:
                async with http.stream("POST", "/v1/messages", json=body,
                                       headers={"x-api-key": key}) as response:
                    async for line in response.aiter_lines():
                        if "content_block_delta" in line:
                            break
            await asyncio.wait_for(up.disconnected.wait(), 10)
            assert up.streams_finished == 0
            async with asyncio.timeout(10):
                while not (rows := await usage_rows(gw, key)):
                    await asyncio.sleep(0.02)
            assert rows[0]["status"] == "cancelled"
            info = await _info(gw, key)
            assert info["freeze_balance"] == 0


async def test_a_client_gone_before_the_first_byte_is_recorded_cancelled(
        settings: Settings) -> None:
    async with FakeAnthropic(first_byte_delay=30.0) as up:
        async with serve_gateway(llm_settings(settings, account("a1", up)),
                                 with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            body = STREAM
            async with httpx.AsyncClient(base_url=gw.base_url) as http:
                request = asyncio.ensure_future(http.post("/v1/messages", json=body,
                                                          headers={"x-api-key": key}))
                async with asyncio.timeout(10):  # the upstream has the call
                    while not up.requests:
                        await asyncio.sleep(0.02)
                request.cancel()  # the client hangs up before any byte came back
                await asyncio.gather(request, return_exceptions=True)
            async with asyncio.timeout(10):
                while not (rows := await usage_rows(gw, key)):
                    await asyncio.sleep(0.02)
            assert rows[0]["status"] == "cancelled"
            assert rows[0]["cost"] == 0
            assert (await _info(gw, key))["freeze_balance"] == 0


async def test_usage_retention_deletes_old_rows(settings: Settings) -> None:
    clock = ManualClock()
    async with FakeAnthropic() as up:
        s = llm_settings(settings, account("a1", up)).model_copy(
            update={"llm_usage_retention_days": 30})
        async with serve_gateway(s, clock=clock, with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            client = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key))
            await client.messages.create(model="claude-fake-1", max_tokens=10, messages=MSG)
            assert gw.runtime.relay is not None
            clock.advance(29 * 86400)
            assert await gw.runtime.relay.purge_usage() == 0
            clock.advance(2 * 86400)
            await client.messages.create(model="claude-fake-1", max_tokens=10, messages=MSG)
            assert await gw.runtime.relay.purge_usage() == 1
            assert len(await usage_rows(gw, key)) == 1
