"""A worker killed while a Sora video is being made: another process takes the job over
once the lease lapses, renders the video from the recorded upstream task, and charges once."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import httpx

from gengate.testing import free_port

ADMIN = "video-takeover-admin"


def _start(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env.update({
        "GENGATE_DATA_DIR": str(data), "GENGATE_ADMIN_KEY": ADMIN,
        "GENGATE_LOCAL_DELAY": "1.5", "GENGATE_LEASE_SECONDS": "1",
        "GENGATE_LOCAL_SCALE": "0.25",
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


async def test_video_of_a_killed_worker_is_taken_over(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _start(data, port1 := free_port())
    second = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port1}") as http:
            await _until_up(http, first)
            user = (await http.post("/admin/users", json={"email": "v@x.io", "balance": 10},
                                    headers={"Authorization": f"Bearer {ADMIN}"})).json()
            headers = {"TT-API-KEY": user["data"]["apiKey"]}
            job_id = (await http.post("/sora/generations", headers=headers, json={
                "model": "sora-2", "prompt": "a desert at golden hour"})).json()["data"]["jobId"]
            async with asyncio.timeout(20):
                while (await http.get("/sora/fetch", params={"jobId": job_id},
                                      headers=headers)).json()["status"] != "ON_QUEUE":
                    await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = _start(data, port2 := free_port())
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port2}") as http:
            await _until_up(http, second)
            async with asyncio.timeout(60):
                while True:
                    body = (await http.get("/sora/fetch", params={"jobId": job_id},
                                           headers=headers)).json()
                    if body["status"] in ("SUCCESS", "FAILED"):
                        break
                    await asyncio.sleep(0.05)
            assert body["status"] == "SUCCESS", body
            mp4 = (await http.get(body["data"]["videoUrl"])).content
            with av.open(io.BytesIO(mp4), "r") as container:
                assert container.duration == 10_000_000
            ledger = (await http.get(f"/admin/users/{user['data']['userId']}/ledger",
                                     headers={"Authorization": f"Bearer {ADMIN}"})).json()
        submissions = (data / "local-upstream" / "submissions.log").read_text().split("\n")
        assert sum(1 for line in submissions if line.startswith(job_id)) == 1
        assert ledger["data"]["totals"] == {"topup": 10, "freeze": 3, "settle": 3, "refund": 0,
                                             "overage": 0}
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
