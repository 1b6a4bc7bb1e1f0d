"""Quota: freeze at submit, settle on success, refund on failure and timeout, exactly once;
admission limits hold under concurrency."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway

V1 = "/midjourney/v1"


async def _ledger(gw: Gateway, user_id: int) -> dict[str, Any]:
    response = await gw.http.get(f"/admin/users/{user_id}/ledger",
                                 headers={"Authorization": f"Bearer {gw.admin_key}"})
    return cast("dict[str, Any]", response.json()["data"])


def _balanced(ledger: dict[str, Any]) -> None:
    """balance and freeze_balance equal what the ledger says."""
    t, user = ledger["totals"], ledger["user"]
    assert user["balance"] == t["topup"] - t["freeze"] + t["refund"]
    assert user["freeze_balance"] == t["freeze"] - t["settle"] - t["refund"]


async def test_info_arithmetic_across_success_failure_and_timeout(settings: Settings) -> None:
    clock = ManualClock()
    settings = settings.model_copy(update={"local_fail_marker": "FAILME",
                                           "local_hang_marker": "HANGME"})
    async with serve_gateway(settings, clock=clock) as gw:
        user_id, key = await gw.create_user(balance=20)
        client = gw.client(key)
        ok_id = (await client.post(f"{V1}/imagine", json={"prompt": "a fox"})).json()
        fail_id = (await client.post(f"{V1}/imagine", json={"prompt": "a FAILME fox"})).json()
        hang_id = (await client.post(f"{V1}/imagine",
                                     json={"prompt": "a HANGME fox", "mode": "turbo"})).json()
        ok = await gw.wait(client, ok_id["data"]["jobId"])
        failed = await gw.wait(client, fail_id["data"]["jobId"])
        assert ok["status"] == "SUCCESS"
        assert failed["status"] == "FAILED" and failed["message"].startswith("[Internal error]")
        assert failed["data"]["progress"] is None
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["balance"] == 20 - 2 - 4 and info["freeze_balance"] == 4
        clock.advance(301)
        assert gw.runtime.worker is not None
        gw.runtime.worker.wake()
        hung = await gw.wait(client, hang_id["data"]["jobId"])
        assert hung["status"] == "FAILED" and hung["message"] == "Job Timeout"
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["balance"] == 18 and info["freeze_balance"] == 0
        ledger = await _ledger(gw, user_id)
        _balanced(ledger)
        assert ledger["totals"] == {
            "topup": 20, "freeze": 8, "settle": 2, "refund": 6,
            "overage": 0,
        }


async def test_402_and_499_charge_nothing(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=5, max_queue=2)
        client = gw.client(key)
        for _ in range(2):
            assert (await client.post(f"{V1}/imagine", json={"prompt": "x"})).status_code == 200
        full = await client.post(f"{V1}/imagine", json={"prompt": "x"})
        assert full.status_code == 499 and full.json()["status"] == "FAILED"
        assert full.json()["data"] is None
        _, poor_key = await gw.create_user(balance=1)
        poor = await gw.client(poor_key).post(f"{V1}/imagine", json={"prompt": "x"})
        assert poor.status_code == 402
        relax = await gw.client(poor_key).post(f"{V1}/imagine",
                                               json={"prompt": "x", "mode": "relax"})
        assert relax.status_code == 200
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["balance"] == 1 and info["freeze_balance"] == 4


async def test_concurrent_submits_never_overdraw(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        user_id, key = await gw.create_user(balance=21, max_queue=100)
        client = gw.client(key)
        responses = await asyncio.gather(*[
            client.post(f"{V1}/imagine", json={"prompt": f"cat {i}"}) for i in range(40)
        ])
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) == 10 and codes.count(402) == 30
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["balance"] == 1 and info["freeze_balance"] == 20
        _balanced(await _ledger(gw, user_id))


async def test_concurrent_submits_never_overrun_max_queue(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=1000, max_queue=7)
        client = gw.client(key)
        responses = await asyncio.gather(*[
            client.post(f"{V1}/imagine", json={"prompt": f"dog {i}"}) for i in range(30)
        ])
        codes = [r.status_code for r in responses]
        assert codes.count(200) == 7 and codes.count(499) == 23


async def test_idempotent_resubmit_returns_the_first_job(settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        headers = {"Idempotency-Key": "order-42"}
        first, second, *rest = await asyncio.gather(*[
            client.post(f"{V1}/imagine", json={"prompt": "owl"}, headers=headers)
            for _ in range(4)
        ])
        ids = {r.json()["data"]["jobId"] for r in (first, second, *rest)}
        assert len(ids) == 1
        await gw.wait(client, ids.pop())
        later = await client.post(f"{V1}/imagine", json={"prompt": "owl"}, headers=headers)
        assert later.json()["data"]["jobId"] == first.json()["data"]["jobId"]
        other = await client.post(f"{V1}/imagine", json={"prompt": "cat"}, headers=headers)
        assert other.status_code == 409 and "Idempotency-Key" in other.json()["message"]
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["balance"] == 8
        ledger = await _ledger(gw, user_id)
        assert ledger["totals"]["freeze"] == 2 and ledger["totals"]["settle"] == 2
