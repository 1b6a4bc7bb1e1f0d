"""A worker killed mid-job: another process takes the job over once the lease lapses,
resumes from the recorded upstream task, and nothing is charged twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.testing import free_port, serve_gateway

ADMIN = "takeover-admin"


def _start(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env.update({
        "GENGATE_DATA_DIR": str(data), "GENGATE_ADMIN_KEY": ADMIN,
        "GENGATE_LOCAL_DELAY": "1.5", "GENGATE_LEASE_SECONDS": "1",
        "GENGATE_POLL_INTERVAL": "0.1", "GENGATE_UPSTREAM_POLL_INTERVAL": "0.05",
    })
    return subprocess.Popen([sys.executable, "-m", "gengate", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _until_up(http: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(30):
        while True:
            assert proc.poll() is None, "gengate exited"
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


async def test_job_of_a_killed_worker_is_taken_over(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port1, port2 = free_port(), free_port()
    first = _start(data, port1)
    second = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port1}") as http:
            await _until_up(http, first)
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
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = _start(data, port2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port2}") as http:
            await _until_up(http, second)
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
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


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
