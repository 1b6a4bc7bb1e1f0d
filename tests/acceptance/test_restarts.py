"""Restarts with real processes: a clean SIGTERM ends `gengate serve` and `gengate worker`
with status 0, and a node killed with SIGKILL that starts again takes its own jobs back at
once instead of waiting for their leases to lapse."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gengate.testing import free_port

ADMIN = "restart-admin"
#: far longer than the restarted node may take: a node that waited for its own leases
#: to lapse misses the deadline below
LEASE = 120.0
#: process id -> its output file
_LOGS: dict[int, Path] = {}


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env.update({"GENGATE_DATA_DIR": str(data), "GENGATE_ADMIN_KEY": ADMIN,
                "GENGATE_POLL_INTERVAL": "0.1", "GENGATE_UPSTREAM_POLL_INTERVAL": "0.05",
                **extra})
    return env


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """Start gengate; its output goes to a file beside the data directory."""
    log = Path(env["GENGATE_DATA_DIR"]).parent / f"{args[0]}-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gengate", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    _LOGS[proc.pid] = log
    return proc


def _output(proc: subprocess.Popen[bytes]) -> str:
    return _LOGS[proc.pid].read_text(errors="replace")


async def _until_up(http: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(60):
        while True:
            assert proc.poll() is None, "gengate exited"
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


async def _exit_status(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the process without blocking the event loop."""
    status = await asyncio.to_thread(proc.wait, 30)
    assert status is not None, _output(proc)
    return status


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_serve_exits_0_after_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(_env(tmp_path / "data"), "serve", "--port", str(port))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await _until_up(http, proc)
        proc.terminate()
        assert await _exit_status(proc) == 0, _output(proc)
    finally:
        _stop(proc)


async def test_worker_exits_0_after_sigterm(tmp_path: Path) -> None:
    proc = _start(_env(tmp_path / "data"), "worker")
    try:
        async with asyncio.timeout(60):
            while "running" not in _output(proc):
                assert proc.poll() is None, _output(proc)
                await asyncio.sleep(0.05)
        proc.terminate()
        assert await _exit_status(proc) == 0
    finally:
        _stop(proc)


async def test_a_killed_node_restarting_takes_its_jobs_back_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data, GENGATE_LOCAL_DELAY="2", GENGATE_LEASE_SECONDS=str(LEASE))
    port1, port2 = free_port(), free_port()
    first = _start(env, "serve", "--port", str(port1))
    second = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port1}") as http:
            await _until_up(http, first)
            user = (await http.post("/admin/users", json={"email": "r@x.io", "balance": 10},
                                    headers={"Authorization": f"Bearer {ADMIN}"})).json()
            headers = {"TT-API-KEY": user["data"]["apiKey"]}
            job_id = (await http.post("/midjourney/v1/imagine", json={"prompt": "a heron"},
                                      headers=headers)).json()["data"]["jobId"]
            async with asyncio.timeout(30):
                while True:  # running upstream, its task id recorded
                    body = (await http.get("/midjourney/v1/fetch", params={"jobId": job_id},
                                           headers=headers)).json()
                    if body["status"] == "ON_QUEUE" and int(body["data"]["progress"]) > 0:
                        break
                    await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        second = _start(env, "serve", "--port", str(port2))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port2}") as http:
            await _until_up(http, second)
            up_at = time.monotonic()  # a loaded machine can take long to start a process
            # the lease the dead run left has most of two minutes to go: only a node that
            # knows the job as its own finishes it within this deadline
            async with asyncio.timeout(LEASE / 3):
                while True:
                    body = (await http.get("/midjourney/v1/fetch", params={"jobId": job_id},
                                           headers=headers)).json()
                    if body["status"] in ("SUCCESS", "FAILED"):
                        break
                    await asyncio.sleep(0.05)
            assert body["status"] == "SUCCESS", body
            assert time.monotonic() - up_at < LEASE / 3 < LEASE - (up_at - killed_at)
        submissions = (data / "local-upstream" / "submissions.log").read_text().split("\n")
        assert sum(1 for line in submissions if line.startswith(job_id)) == 1
        second.terminate()
        assert await _exit_status(second) == 0
    finally:
        _stop(first)
        _stop(second)
