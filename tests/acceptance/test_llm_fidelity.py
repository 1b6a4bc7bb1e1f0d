"""The LLM relay next to what the real Anthropic and OpenAI APIs do (the fakes follow their
public docs; see gengate.testing.llm): query strings, the upstream's headers and error
answers, model lookups, token-limit validation, billing of reported usage beyond the hold,
and the shipped prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from gengate.config import Settings
from gengate.testing import FakeAnthropic, FakeOpenAI, serve_gateway
from tests.acceptance.test_billing import _ledger
from tests.acceptance.test_llm_billing import _balanced
from tests.acceptance.test_llm_relay import (  # noqa: F401 (the autouse fixture closes the clients)
    _close_sdk_clients,
    account,
    llm_settings,
    sdk,
    usage_rows,
)

MSG: list[Any] = [{"role": "user", "content": "hi"}]
BODY = {"model": "claude-fake-1", "max_tokens": 10, "messages": MSG}


async def test_query_string_and_upstream_headers_reach_the_client(settings: Settings) -> None:
    async with FakeAnthropic() as up, FakeOpenAI() as oup:
        s = llm_settings(settings, account("a1", up), account("o1", oup, kind="openai"))
        async with serve_gateway(s, with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            for stream in (False, True):
                r = await gw.http.post("/v1/messages?beta=true", headers={"x-api-key": key},
                                       json={**BODY, "stream": stream})
                assert r.status_code == 200
                assert up.requests[-1].path == "/v1/messages?beta=true"
                assert r.headers["request-id"] == up.request_id
                assert r.headers["anthropic-ratelimit-requests-remaining"] == "3999"
                assert r.headers["anthropic-ratelimit-tokens-limit"] == "400000"
                assert "retry-after" not in r.headers
            r = await gw.http.post("/v1/messages/count_tokens?beta=true",
                                   headers={"x-api-key": key}, json=BODY)
            assert r.status_code == 200
            assert up.requests[-1].path == "/v1/messages/count_tokens?beta=true"
            r = await gw.http.post("/v1/chat/completions", headers={"authorization":
                                   f"Bearer {key}"}, json={"model": "gpt-x", "messages": MSG})
            assert r.status_code == 200
            assert r.headers["x-request-id"] == oup.request_id
            assert r.headers["x-ratelimit-remaining-tokens"] == "799000"


async def test_429_and_529_answers_pass_unchanged_and_no_retry_after_is_invented(
        settings: Settings) -> None:
    async with FakeAnthropic(plan=[(429, {"retry-after": "7"}), 529]) as up:
        async with serve_gateway(llm_settings(settings, account("a1", up)),
                                 with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key}, json=BODY)
            assert r.status_code == 429
            assert r.json() == up.error(429)  # the upstream's own body, request_id and all
            assert r.headers["retry-after"] == "7"
            assert r.headers["anthropic-ratelimit-requests-limit"] == "4000"
            assert r.headers["request-id"] == up.request_id
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key}, json=BODY)
            assert r.status_code == 529
            assert r.json() == up.error(529)
            assert r.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
            assert "retry-after" not in r.headers
            # the SDK sees the upstream's error type (and would read its request id)
            client = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key, max_retries=0))
            up.plan = [(429, {"retry-after": "3"})]
            with pytest.raises(anthropic.RateLimitError) as caught:
                await client.messages.create(model="claude-fake-1", max_tokens=10,
                                             messages=MSG)
            assert caught.value.body == up.error(429)
            assert rows_failed(await usage_rows(gw, key)) == 3


def rows_failed(rows: list[dict[str, Any]]) -> int:
    assert all(r["cost"] == 0 for r in rows)
    return sum(r["status"] == "failed" for r in rows)


async def test_an_upstream_500_reaches_the_client_as_500(settings: Settings) -> None:
    async with FakeAnthropic(plan=[500, 500]) as up:
        async with serve_gateway(llm_settings(settings, account("a1", up)),
                                 with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key}, json=BODY)
            assert r.status_code == 500
            assert r.json() == up.error(500)
            assert len(up.requests) == 2  # retried once on the account first
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key}, json=BODY)
            assert r.status_code == 200  # the plan is spent: the account answers again


async def test_models_retrieve_with_both_sdks(settings: Settings) -> None:
    async with FakeAnthropic() as up, FakeOpenAI() as oup:
        s = llm_settings(settings, account("a1", up, aliases={"sonnet": "claude-fake-2"}),
                         account("o1", oup, kind="openai", models=["gpt-*"]))
        async with serve_gateway(s, with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            client = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key))
            found = await client.models.retrieve("claude-fake-1")
            assert found.id == "claude-fake-1" and found.type == "model"
            assert (await client.models.retrieve("sonnet")).id == "sonnet"
            with pytest.raises(anthropic.NotFoundError):
                await client.models.retrieve("claude-none")
            oclient = sdk(openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key=key))
            model = await oclient.models.retrieve("gpt-fake-1")
            assert model.id == "gpt-fake-1" and model.object == "model"
            with pytest.raises(openai.NotFoundError):
                await oclient.models.retrieve("gpt-none")
            paths = (await gw.http.get("/openapi.json")).json()["paths"]
            assert "/v1/models/{model_id}" in paths


async def test_models_without_upstreams_is_an_empty_list(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=100)
        client = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=key))
        assert [m async for m in client.models.list()] == []
        oclient = sdk(openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key=key))
        assert (await oclient.models.list()).data == []
        r = await gw.http.get("/v1/models/claude-x", headers={
            "x-api-key": key, "anthropic-version": "2023-06-01"})
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [True, False, "10", 1.5, 0, -1, [], {}])
async def test_token_limits_must_be_whole_numbers(settings: Settings, field: str,
                                                  value: Any) -> None:
    async with FakeAnthropic() as up:
        async with serve_gateway(llm_settings(settings, account("a1", up)),
                                 with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key},
                                   json={**BODY, field: value})
            assert r.status_code == 400
            assert r.json()["error"]["type"] == "invalid_request_error"
            assert field in r.json()["error"]["message"]
            assert up.requests == []


async def test_usage_above_the_hold_is_billed_and_the_balance_may_go_below_zero(
        settings: Settings) -> None:
    # a 100-byte body whose upstream reports 200,000 input tokens (a document by URL)
    async with FakeAnthropic(input_tokens=200_000, output_tokens=1000) as up:
        s = llm_settings(settings, account("a1", up))
        async with serve_gateway(s, with_worker=False) as gw:
            user_id, key = await gw.create_user(balance=50)
            body = {"model": "claude-opus-4-6", "max_tokens": 100, "messages": MSG}
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key}, json=body)
            assert r.status_code == 200
            # claude-opus-4-6 at its own list price: 200,000 x $5 + 1,000 x $25 per million
            # = $1.025 = 102.5 quota (Opus 4/4.1's $15/$75 would be 307.5)
            rows = await usage_rows(gw, key)
            assert rows[0]["cost"] == 102.5 and rows[0]["input_tokens"] == 200_000
            ledger = await _ledger(gw, user_id)
            assert ledger["user"]["balance"] == pytest.approx(50 - 102.5)
            assert ledger["user"]["freeze_balance"] == 0
            totals = ledger["totals"]
            assert totals["settle"] + totals["overage"] == pytest.approx(102.5)
            assert totals["overage"] > 100
            assert [e["kind"] for e in ledger["entries"]][:2] == ["overage", "settle"]
            _balanced(ledger)
            # below zero: refused until topped up, with nothing sent upstream
            sent = len(up.requests)
            for stream in (False, True):
                r = await gw.http.post("/v1/messages", headers={"x-api-key": key},
                                       json={**body, "stream": stream})
                assert r.status_code == 402 and r.json()["error"]["type"] == "billing_error"
            assert len(up.requests) == sent
            r = await gw.http.post(f"/admin/users/{user_id}/topup", json={"amount": 200},
                                   headers={"Authorization": f"Bearer {gw.admin_key}"})
            assert r.status_code == 200
            up.input_tokens = 10
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key},
                                   json={**body, "stream": True})
            assert r.status_code == 200


async def test_shipped_prices_tiers_and_one_hour_cache_writes(settings: Settings) -> None:
    async with FakeAnthropic(input_tokens=150_000, output_tokens=1000,
                             cache_read_tokens=60_000) as up:
        async with serve_gateway(llm_settings(settings, account("a1", up)),
                                 with_worker=False) as gw:
            _, key = await gw.create_user(balance=10_000)
            for model in ("claude-sonnet-4-5-20250929", "claude-sonnet-4-6",
                          "claude-opus-4-1-20250805", "claude-opus-4-5-20251101"):
                r = await gw.http.post("/v1/messages", headers={"x-api-key": key},
                                       json={**BODY, "model": model})
                assert r.status_code == 200
            costs = [r["cost"] for r in reversed(await usage_rows(gw, key))]
            # prompt 210,000 > 200,000: Sonnet 4.5's long-context rates ($6 / $22.50 /
            # $0.60); Sonnet 4.6 has no such tier ($3 / $15 / $0.30)
            assert costs[0] == pytest.approx((150_000 * 6 + 1000 * 22.5 + 60_000 * 0.6) / 1e4)
            assert costs[1] == pytest.approx((150_000 * 3 + 1000 * 15 + 60_000 * 0.3) / 1e4)
            assert costs[2] == pytest.approx((150_000 * 15 + 1000 * 75 + 60_000 * 1.5) / 1e4)
            assert costs[3] == pytest.approx((150_000 * 5 + 1000 * 25 + 60_000 * 0.5) / 1e4)


async def test_an_operator_price_file_and_a_model_without_price(settings: Settings,
                                                                tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"quota_per_usd": 100, "models": {
        "claude-fake-*": {"input": 1, "output": 2, "cache_write": 1.25, "cache_write_1h": 2,
                          "cache_read": 0.1}}}))
    async with FakeAnthropic(input_tokens=1000, output_tokens=1000,
                             cache_write_tokens=3000) as up:
        up.cache_write_1h_tokens = 1000
        s = llm_settings(settings, account("a1", up)).model_copy(
            update={"llm_prices_file": str(prices)})
        async with serve_gateway(s, with_worker=False) as gw:
            _, key = await gw.create_user(balance=100)
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key}, json=BODY)
            assert r.status_code == 200
            # ($1 x 1000 + $2 x 1000 + $1.25 x 2000 + $2 x 1000 (1-hour writes)) / 1e6
            # = $0.0075 = 0.75 quota
            assert (await usage_rows(gw, key))[0]["cost"] == pytest.approx(0.75)
            # no pattern matches (the file has no "*"): refused before any upstream call
            sent = len(up.requests)
            r = await gw.http.post("/v1/messages", headers={"x-api-key": key},
                                   json={**BODY, "model": "other-model"})
            assert r.status_code == 400 and "no LLM price" in r.json()["error"]["message"]
            assert len(up.requests) == sent
