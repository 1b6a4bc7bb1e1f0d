"""API keys with limits, on SQLite and PostgreSQL: each limit's answer in each front's
format, spend caps exact under concurrency (two API nodes on one database), usage per key,
a user's own key routes, and revocation seen by a second API process within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.errors import AUTH_MESSAGE
from gengate.testing import FakeAnthropic, Gateway, serve_gateway
from tests.acceptance.test_billing import _balanced, _ledger
from tests.acceptance.test_llm_relay import (  # the fixture closes the SDK clients
    _close_sdk_clients,  # noqa: F401
    account,
    llm_settings,
    sdk,
)
from tests.conftest import fresh_postgres
from tests.processes import gengate_env, serve

V1 = "/midjourney/v1"
MSG: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["sqlite", "postgres"])
async def db_settings(request: pytest.FixtureRequest,
                      settings: Settings) -> AsyncIterator[Settings]:
    """The test's settings on a fresh SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield settings
        return
    async with fresh_postgres(migrated=True) as url:
        yield settings.model_copy(update={"database_url": url})


def _admin(gw: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.admin_key}"}


async def _key(gw: Gateway, user_id: int, **limits: Any) -> dict[str, Any]:
    response = await gw.http.post(f"/admin/users/{user_id}/keys", json=limits,
                                  headers=_admin(gw))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _failed(response: httpx.Response, status: int) -> str:
    """The TTAPI envelope of a refusal; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "FAILED" and body["data"] is None
    return str(body["message"])


async def test_keys_are_objects_created_listed_rotated_and_revoked(
        db_settings: Settings) -> None:
    async with serve_gateway(db_settings, with_worker=False) as gw:
        user_id, first = await gw.create_user(balance=10)
        made = await _key(gw, user_id, name="ci job", capDay=3)
        assert made["apiKey"].startswith(made["prefix"]) and made["name"] == "ci job"
        listed = (await gw.http.get(f"/admin/users/{user_id}/keys",
                                    headers=_admin(gw))).json()["data"]
        assert [k["keyId"] for k in listed] == [listed[0]["keyId"], made["keyId"]]
        assert listed[0]["products"] is None and listed[0]["capDay"] is None  # no limits
        assert listed[1]["capDay"] == 3 and listed[1]["status"] == "active"
        assert all("apiKey" not in k and made["apiKey"] not in str(k) for k in listed)

        key = gw.client(made["apiKey"])
        assert (await key.get(f"{V1}/info")).status_code == 200
        rotated = (await gw.http.post(f"/admin/users/{user_id}/keys/{made['keyId']}/rotate",
                                      headers=_admin(gw))).json()["data"]
        assert rotated["keyId"] == made["keyId"] and rotated["capDay"] == 3
        assert _failed(await key.get(f"{V1}/info"), 401) == AUTH_MESSAGE
        new = gw.client(rotated["apiKey"])
        assert (await new.get(f"{V1}/info")).status_code == 200

        gone = await gw.http.delete(f"/admin/users/{user_id}/keys/{made['keyId']}",
                                    headers=_admin(gw))
        assert gone.status_code == 200
        assert _failed(await new.get(f"{V1}/info"), 401) == AUTH_MESSAGE
        assert (await gw.client(first).get(f"{V1}/info")).status_code == 200
        again = await gw.http.delete(f"/admin/users/{user_id}/keys/{made['keyId']}",
                                     headers=_admin(gw))
        assert again.status_code == 404
        bad = await gw.http.post(f"/admin/users/{user_id}/keys", headers=_admin(gw),
                                 json={"cidrs": ["10.0.0.0/33"]})
        assert "cidrs" in _failed(bad, 400)
        bad = await gw.http.post(f"/admin/users/{user_id}/keys", headers=_admin(gw),
                                 json={"products": ["nope"]})
        assert "unknown product `nope`" in _failed(bad, 400)


async def test_product_rule_names_itself(db_settings: Settings) -> None:
    async with serve_gateway(db_settings, with_worker=False) as gw:
        user_id, _ = await gw.create_user(balance=10)
        llm_only = gw.client((await _key(gw, user_id, products=["llm"]))["apiKey"])
        message = _failed(await llm_only.post(f"{V1}/imagine", json={"prompt": "a fox"}), 403)
        assert "may not use product `midjourney`" in message and "allowed products" in message
        hosted = await llm_only.post(f"/hold{V1}/imagine", json={"prompt": "a fox"})
        assert "product `midjourney`" in _failed(hosted, 403)
        mj = gw.client((await _key(gw, user_id, products=["midjourney"]))["apiKey"])
        made = await mj.post(f"{V1}/imagine", json={"prompt": "a fox"})
        assert made.status_code == 200
        # the engine's own routes across products: only the key's products' jobs
        job_id = made.json()["data"]["jobId"]
        other = await llm_only.post("/jobs/cancel", json={"jobId": job_id})
        assert "product `midjourney`" in _failed(other, 403)
        listing = await llm_only.get("/jobs/list")
        assert "give `product`" in _failed(listing, 403)
        mine = (await mj.get("/jobs/list", params={"product": "midjourney"})).json()
        assert [j["jobId"] for j in mine["data"]] == [job_id]
        assert (await mj.post("/jobs/cancel", json={"jobId": job_id})).status_code == 200


async def test_address_rule_trusts_forwarded_for_only_from_trusted_proxies(
        db_settings: Settings) -> None:
    async with serve_gateway(db_settings, with_worker=False) as gw:
        user_id, _ = await gw.create_user(balance=10)
        office = gw.client((await _key(gw, user_id, cidrs=["10.1.0.0/16"]))["apiKey"])
        # no trusted proxy configured: a forged header from the peer changes nothing
        forged = await office.get(f"{V1}/info", headers={"X-Forwarded-For": "10.1.2.3"})
        message = _failed(forged, 403)
        assert "from address 127.0.0.1" in message and "allowed addresses" in message
        home = gw.client((await _key(gw, user_id, cidrs=["127.0.0.0/8"]))["apiKey"])
        assert (await home.get(f"{V1}/info")).status_code == 200
    proxied = db_settings.model_copy(update={"trusted_proxies": "127.0.0.1/32"})
    async with serve_gateway(proxied, with_worker=False) as gw:
        user_id, _ = await gw.create_user(balance=10, email="proxied@example.com")
        office = gw.client((await _key(gw, user_id, cidrs=["10.1.0.0/16"]))["apiKey"])
        inside = await office.get(f"{V1}/info", headers={"X-Forwarded-For": "10.1.2.3"})
        assert inside.status_code == 200
        # the right-most untrusted hop counts, not what the client wrote first
        spoofed = await office.get(f"{V1}/info",
                                   headers={"X-Forwarded-For": "10.1.2.3, 192.0.2.7"})
        assert "from address 192.0.2.7" in _failed(spoofed, 403)


async def test_expired_key_is_401_in_each_front_format(db_settings: Settings) -> None:
    clock = ManualClock()
    async with FakeAnthropic() as up:
        s = llm_settings(db_settings, account("a1", up))
        async with serve_gateway(s, clock=clock, with_worker=False) as gw:
            user_id, _ = await gw.create_user(balance=10)
            made = await _key(gw, user_id, expiresAt=clock.now() + 60)
            key = gw.client(made["apiKey"])
            assert (await key.get(f"{V1}/info")).status_code == 200
            clock.advance(61)
            assert _failed(await key.get(f"{V1}/info"), 401) == AUTH_MESSAGE
            listed = (await gw.http.get(f"/admin/users/{user_id}/keys",
                                        headers=_admin(gw))).json()["data"]
            assert listed[-1]["status"] == "expired"
            claude = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=made["apiKey"],
                                                  max_retries=0))
            with pytest.raises(anthropic.AuthenticationError) as denied:
                await claude.messages.create(model="claude-fake-1", max_tokens=10,
                                             messages=MSG)
            assert denied.value.status_code == 401
            assert "'authentication_error'" in str(denied.value.body)
            assert "'invalid x-api-key'" in str(denied.value.body)
            gpt = sdk(openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key=made["apiKey"],
                                         max_retries=0))
            with pytest.raises(openai.AuthenticationError) as refused:
                await gpt.chat.completions.create(model="gpt-fake", messages=MSG)
            assert refused.value.code == "invalid_api_key"


async def test_model_rule_and_llm_cap_in_the_protocols_format(db_settings: Settings) -> None:
    async with FakeAnthropic(input_tokens=1000, output_tokens=1000) as up:
        s = llm_settings(db_settings, account("a1", up)).model_copy(update={"llm_prices": {
            "claude-fake-*": {"input": 1000, "output": 1000}}})
        async with serve_gateway(s, with_worker=False) as gw:
            user_id, _ = await gw.create_user(balance=100)
            made = await _key(gw, user_id, products=["llm"], models=["claude-fake-1*"],
                              capTotal=3)
            claude = sdk(anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=made["apiKey"],
                                                  max_retries=0))
            with pytest.raises(anthropic.PermissionDeniedError) as denied:
                await claude.messages.create(model="claude-fake-2", max_tokens=10,
                                             messages=MSG)
            assert "may not use model `claude-fake-2`" in str(denied.value.body)
            # 1000 input + 1000 output tokens at 1000 per million: 2 quota a call; a call's
            # hold is its worst case (a little over 2 here), so the second passes the cap
            await claude.messages.create(model="claude-fake-1", max_tokens=2000, messages=MSG)
            with pytest.raises(anthropic.APIStatusError) as capped:
                await claude.messages.create(model="claude-fake-1", max_tokens=2000,
                                             messages=MSG)
            assert capped.value.status_code == 402
            assert "total spend cap" in str(capped.value.body)
            assert "not the account balance" in str(capped.value.body)
            # a call is settled just after its answer is sent (at once on SQLite; on
            # PostgreSQL in the next group commit): read until it is
            async with asyncio.timeout(10):
                while True:
                    usage = (await gw.http.get(f"/admin/users/{user_id}/keys/usage",
                                               headers=_admin(gw))).json()["data"]
                    if usage and usage[0]["spent"]:
                        break
            assert [(u["keyId"], u["spent"], u["requests"]) for u in usage] == [
                (made["keyId"], 2, 1)]


async def test_caps_refuse_with_402_and_refunds_give_spend_back(db_settings: Settings) -> None:
    settings = db_settings.model_copy(update={"local_fail_marker": "FAILME"})
    async with serve_gateway(settings) as gw:
        user_id, _ = await gw.create_user(balance=100)
        made = await _key(gw, user_id, capDay=5)
        key = gw.client(made["apiKey"])
        first = (await key.post(f"{V1}/imagine", json={"prompt": "a fox"})).json()
        second = (await key.post(f"{V1}/imagine", json={"prompt": "a cat"})).json()
        # 2 + 2 spent today: a third imagine (2) would pass the daily cap of 5
        over = await key.post(f"{V1}/imagine", json={"prompt": "a fox"})
        message = _failed(over, 402)
        assert "daily spend cap (5)" in message and "not the account balance" in message
        for job in (first, second):
            assert (await gw.wait(key, job["data"]["jobId"]))["status"] == "SUCCESS"

        tight = await _key(gw, user_id, capTotal=2)
        once = gw.client(tight["apiKey"])
        failing = (await once.post(f"{V1}/imagine", json={"prompt": "a FAILME fox"})).json()
        assert (await gw.wait(once, failing["data"]["jobId"]))["status"] == "FAILED"
        # the failed job's refund went back to the key's spend: room for one more
        again = await once.post(f"{V1}/imagine", json={"prompt": "a fox"})
        assert again.status_code == 200
        await gw.wait(once, again.json()["data"]["jobId"])
        shown = (await gw.http.get(f"/admin/users/{user_id}/keys/{made['keyId']}",
                                   headers=_admin(gw))).json()["data"]
        assert shown["spentDay"] == 4 and shown["spentTotal"] == 4
        ledger = await _ledger(gw, user_id)
        _balanced(ledger)
        assert ledger["user"]["balance"] == 100 - 6
        usage = await key.get("/keys/usage")  # a capped key may read the usage
        spent = {u["keyId"]: u for u in usage.json()["data"]}
        assert spent[made["keyId"]]["spent"] == 4 and spent[made["keyId"]]["requests"] == 2
        assert spent[tight["keyId"]]["spent"] == 2 and spent[tight["keyId"]]["requests"] == 2


async def test_concurrent_submits_on_two_nodes_pass_exactly_the_affordable_number(
        db_settings: Settings) -> None:
    async with serve_gateway(db_settings, with_worker=False) as one, \
            serve_gateway(db_settings, with_worker=False) as two:
        user_id, _ = await one.create_user(balance=1000, max_queue=100)
        made = await _key(one, user_id, capTotal=10)  # 5 imagines at 2
        clients = [one.client(made["apiKey"]), two.client(made["apiKey"])]
        responses = await asyncio.gather(*[
            clients[i % 2].post(f"{V1}/imagine", json={"prompt": f"fox {i}"})
            for i in range(24)
        ])
        codes = [r.status_code for r in responses]
        assert codes.count(200) == 5 and codes.count(402) == 19
        ledger = await _ledger(one, user_id)
        _balanced(ledger)
        assert ledger["totals"]["freeze"] == 10


async def test_users_manage_their_own_keys(db_settings: Settings) -> None:
    async with serve_gateway(db_settings, with_worker=False) as gw:
        _, first = await gw.create_user(balance=10)
        me = gw.client(first)
        made = (await me.post("/keys/create", json={"name": "laptop", "capDay": 20,
                                                    "models": ["claude-*"]})).json()["data"]
        assert made["name"] == "laptop" and made["apiKey"].startswith("gg-")
        laptop = gw.client(made["apiKey"])
        refused = await laptop.post("/keys/create", json={"name": "escape"})
        assert "may not manage keys" in _failed(refused, 403)
        changed = (await me.post("/keys/update", json={"keyId": made["keyId"],
                                                        "capDay": None})).json()["data"]
        assert changed["capDay"] is None and changed["models"] == ["claude-*"]
        listed = (await me.get("/keys/list")).json()["data"]
        assert [k["name"] for k in listed] == ["", "laptop"]
        assert (await me.post("/keys/revoke", json={"keyId": made["keyId"]})).status_code == 200
        assert _failed(await laptop.get(f"{V1}/info"), 401) == AUTH_MESSAGE
        assert "keyId" in _failed(await me.post("/keys/revoke", json={}), 400)


@asynccontextmanager
async def _api_process(settings: Settings, logs: Path) -> AsyncIterator[str]:
    """A second API process (``gengate serve --no-worker``) on the same database."""
    env = gengate_env(settings.data_dir, database_url=settings.resolved_database_url(),
                      admin_key="second-node", rate_per_second="0", rate_per_minute="0")
    node = await serve(env, "--no-worker", log=logs)
    try:
        yield node.url
    finally:
        await node.shutdown()


async def test_revocation_reaches_a_second_api_process_within_a_second(
        db_settings: Settings, tmp_path: Path) -> None:
    async with serve_gateway(db_settings, with_worker=False) as gw:
        user_id, _ = await gw.create_user(balance=10)
        made = await _key(gw, user_id)
        async with _api_process(db_settings, tmp_path / "second.log") as base, \
                httpx.AsyncClient(base_url=base, headers={"TT-API-KEY": made["apiKey"]}) as key:
            assert (await key.get(f"{V1}/info")).status_code == 200  # cached there now
            assert (await key.get(f"{V1}/info")).status_code == 200
            revoked = await gw.http.delete(f"/admin/users/{user_id}/keys/{made['keyId']}",
                                           headers=_admin(gw))
            assert revoked.status_code == 200
            start = time.monotonic()
            codes = []
            while time.monotonic() - start < 3:
                codes.append((await key.get(f"{V1}/info")).status_code)
                if codes[-1] == 401:
                    break
            elapsed = time.monotonic() - start
            assert codes[-1] == 401 and elapsed < 1.0, (codes, elapsed)
