"""Cancel (POST /jobs/cancel): a queued job at once, a running one where its upstream can
stop it; the refund and the webhook in the same transaction as the status change; a job
that finished first stays finished."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson

from gengate.config import Settings
from gengate.testing import Gateway, WebhookReceiver, serve_gateway

V1 = "/midjourney/v1"
HANG = "HANGFOREVER"


def _settings(settings: Settings, **extra: Any) -> Settings:
    return settings.model_copy(update={"webhook_allow": "127.0.0.1",
                                       "local_hang_marker": HANG, **extra})


async def _money(gw: Gateway, key: str) -> tuple[float, float]:
    data = (await gw.client(key).get(f"{V1}/info")).json()["data"]
    return data["balance"], data["freeze_balance"]


async def _ledger(gw: Gateway, user_id: int) -> list[dict[str, Any]]:
    answer = await gw.http.get(f"/admin/users/{user_id}/ledger",
                               headers={"Authorization": f"Bearer {gw.admin_key}"})
    return answer.json()["data"]["entries"]  # type: ignore[no-any-return]


async def test_a_queued_job_is_cancelled_at_once(settings: Settings) -> None:
    async with WebhookReceiver() as receiver, serve_gateway(
            _settings(settings), with_worker=False, with_dispatcher=True) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = (await client.post(f"{V1}/imagine", json={
            "prompt": "a cat", "hookUrl": receiver.url})).json()["data"]["jobId"]
        assert await _money(gw, key) == (8, 2)
        cancelled = await client.post("/jobs/cancel", json={"jobId": job_id})
        assert cancelled.status_code == 200
        body = cancelled.json()["data"]
        assert (body["status"], body["message"]) == ("FAILED", "Cancelled by the user")
        assert await _money(gw, key) == (10, 0)
        hook = orjson.loads((await receiver.next()).body)
        assert hook["status"] == "FAILED" and hook["message"] == "Cancelled by the user"
        fetched = (await client.get(f"{V1}/fetch", params={"jobId": job_id})).json()
        assert fetched == hook
        again = await client.post("/jobs/cancel", json={"jobId": job_id})
        assert again.status_code == 409
        kinds = sorted(e["kind"] for e in await _ledger(gw, user_id) if e["jobId"] == job_id)
        assert kinds == ["freeze", "refund"]
        # only its owner may cancel it
        _, other = await gw.create_user(balance=1)
        assert (await gw.client(other).post("/jobs/cancel", json={"jobId": job_id})
                ).status_code == 404
        missing = await client.post("/jobs/cancel", json={})
        assert missing.status_code == 400 and missing.json()["message"] == "jobId: is required"


async def test_a_running_job_is_stopped_upstream(settings: Settings) -> None:
    async with WebhookReceiver() as receiver, serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = (await client.post(f"{V1}/imagine", json={
            "prompt": f"a cat {HANG}", "hookUrl": receiver.url})).json()["data"]["jobId"]
        async with asyncio.timeout(10):
            while True:
                job = await gw.runtime.store.get_job(job_id)
                assert job is not None
                if job.upstream_id is not None:
                    break
                await asyncio.sleep(0.02)
        task_dir = gw.runtime.settings.data_dir / "local-upstream" / job.upstream_id
        assert task_dir.exists()
        cancelled = await client.post("/jobs/cancel", params={"jobId": job_id})
        assert cancelled.status_code == 200, cancelled.text
        assert await _money(gw, key) == (10, 0)
        assert not task_dir.exists()  # the local upstream dropped the task
        hook = orjson.loads((await receiver.next()).body)
        assert hook["status"] == "FAILED" and hook["message"] == "Cancelled by the user"


async def test_a_job_that_finished_first_stays_finished(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = (await client.post(f"{V1}/imagine", json={"prompt": "a cat"})
                  ).json()["data"]["jobId"]
        done = await gw.wait(client, job_id)
        assert done["status"] == "SUCCESS"
        late = await client.post("/jobs/cancel", json={"jobId": job_id})
        assert late.status_code == 409 and "already ended (SUCCESS)" in late.json()["message"]
        assert (await gw.wait(client, job_id))["status"] == "SUCCESS"
        assert await _money(gw, key) == (8, 0)


async def test_cancel_racing_completion_moves_money_once(settings: Settings) -> None:
    async with serve_gateway(_settings(settings, local_delay=0.05, local_steps=1,
                                                 local_scale=0.25)) as gw:
        user_id, key = await gw.create_user(balance=100, max_queue=20)
        client = gw.client(key)
        ids = [(await client.post(f"{V1}/imagine", json={"prompt": f"a cat {n}"})
                ).json()["data"]["jobId"] for n in range(12)]

        async def cancel_later(i: int, job_id: str) -> int:
            await asyncio.sleep(0.1 * i)  # spread over the jobs' run and past it
            return (await client.post("/jobs/cancel", json={"jobId": job_id})).status_code

        codes = await asyncio.gather(*(cancel_later(i, j) for i, j in enumerate(ids)))
        ends = [await gw.wait(client, job_id) for job_id in ids]
        for code, end in zip(codes, ends, strict=True):
            if code == 200:
                assert (end["status"], end["message"]) == ("FAILED", "Cancelled by the user")
            else:
                assert code == 409 and end["status"] == "SUCCESS"
        succeeded = sum(e["status"] == "SUCCESS" for e in ends)
        assert await _money(gw, key) == (100 - 2 * succeeded, 0)
        per_job = Counter((e["jobId"], e["kind"]) for e in await _ledger(gw, user_id))
        for job_id, end in zip(ids, ends, strict=True):
            ended = "settle" if end["status"] == "SUCCESS" else "refund"
            assert per_job[(job_id, "freeze")] == 1 and per_job[(job_id, ended)] == 1
            assert per_job[(job_id, "refund" if ended == "settle" else "settle")] == 0
