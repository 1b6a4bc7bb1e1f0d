"""A worker killed mid-job: another process takes the job over once the lease lapses,
resumes from the recorded upstream task, and nothing is charged twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.testing import serve_gateway
from tests.processes import gengate_env, serve

ADMIN = "takeover-admin"


def _env(data: Path) -> dict[str, str]:
    return gengate_env(data, admin_key=ADMIN, local_delay="1.5", lease_seconds="1",
                       poll_interval="0.1", upstream_poll_interval="0.05")


async def test_job_of_a_killed_worker_is_taken_over(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = await serve(_env(data), log=tmp_path / "first.log")
    second = None
    try:
        async with httpx.AsyncClient(base_url=first.url) as http:
            user = (await http.post("/admin/users", json={"email": "k@x.io", "balance": 10},
                                    headers={"Authorization": f"Bearer {ADMIN}"})).json()
            key = user["data"]["apiKey"]
            headers = {"TT-API-KEY": key}
            job_id = (await http.post("/midjourney/v1/imagine", json={"prompt": "a fox"},
                                      headers=headers)).json()["data"]["jobId"]
            async with asyncio.timeout(20):
                while True:
                    body = (await http.get("/midjourney/v1/fetch", params={"jobId": job_id},
                                           headers=headers)).json()
                    if body["status"] == "ON_QUEUE" and int(body["data"]["progress"]) > 0:
                        break
                    await asyncio.sleep(0.02)
        first.kill()
        second = await serve(_env(data), log=tmp_path / "second.log")
        async with httpx.AsyncClient(base_url=second.url) as http:
            async with asyncio.timeout(30):
                while True:
                    body = (await http.get("/midjourney/v1/fetch", params={"jobId": job_id},
                                           headers=headers)).json()
                    if body["status"] in ("SUCCESS", "FAILED"):
                        break
                    await asyncio.sleep(0.05)
            assert body["status"] == "SUCCESS", body
            assert (await http.get(body["data"]["cdnImage"])).status_code == 200
            ledger = (await http.get(f"/admin/users/{user['data']['userId']}/ledger",
                                     headers={"Authorization": f"Bearer {ADMIN}"})).json()
        submissions = (data / "local-upstream" / "submissions.log").read_text().split("\n")
        assert sum(1 for line in submissions if line.startswith(job_id)) == 1
        assert ledger["data"]["totals"] == {
            "topup": 10, "freeze": 2, "settle": 2, "refund": 0,
            "overage": 0,
        }
        assert ledger["data"]["user"]["balance"] == 8
        assert ledger["data"]["user"]["freeze_balance"] == 0
    finally:
        for node in (first, second):
            if node is not None:
                await node.shutdown()


async def test_a_worker_retaking_its_own_lapsed_lease_runs_the_job_once(
        settings: Settings) -> None:
    clock = ManualClock()
    settings = settings.model_copy(update={"local_hang_marker": "HANGME"})
    async with serve_gateway(settings, clock=clock) as gw:
        assert gw.runtime.worker is not None
        _, key = await gw.create_user(balance=20)
        job_id = (await gw.client(key).post("/midjourney/v1/imagine", json={
            "prompt": "a HANGME fox"})).json()["data"]["jobId"]
        async with asyncio.timeout(10):
            while (job := await gw.runtime.store.get_job(job_id)) is None or not job.upstream_id:
                await asyncio.sleep(0.01)
        # the worker was too slow to renew: its own claim finds the lease lapsed and takes
        # the job again, while the job still runs here
        clock.advance(settings.lease_seconds + 1)
        gw.runtime.worker.wake()
        async with asyncio.timeout(10):
            while (job := await gw.runtime.store.get_job(job_id)) is None or job.attempts < 2:
                await asyncio.sleep(0.01)
        followers = [t for t in asyncio.all_tasks()
                     if t.get_name() == f"gengate-job-{job_id}" and not t.done()]
        assert len(followers) == 1
        assert gw.runtime.worker.busy == 1
