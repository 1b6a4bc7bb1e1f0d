"""Restarts with real processes: a clean SIGTERM ends `gengate serve` and `gengate worker`
with status 0, and a node killed with SIGKILL that starts again takes its own jobs back at
once instead of waiting for their leases to lapse."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx

from tests.processes import Node, gengate_env, serve, start

ADMIN = "restart-admin"
#: far longer than the restarted node may take: a node that waited for its own leases
#: to lapse misses the deadline below
LEASE = 120.0


def _env(data: Path, **extra: str) -> dict[str, str]:
    return gengate_env(data, admin_key=ADMIN, poll_interval="0.1",
                       upstream_poll_interval="0.05", **extra)


def _stop(node: Node | None) -> None:
    if node is not None:
        node.kill()


async def test_serve_exits_0_after_sigterm(tmp_path: Path) -> None:
    node = await serve(_env(tmp_path / "data"), log=tmp_path / "serve.log")
    try:
        node.proc.terminate()
        assert await node.exit_status() == 0, node.output()
    finally:
        _stop(node)


async def test_worker_exits_0_after_sigterm(tmp_path: Path) -> None:
    node = start(_env(tmp_path / "data"), "worker", log=tmp_path / "worker.log")
    try:
        await node.until_output("running")
        node.proc.terminate()
        assert await node.exit_status() == 0, node.output()
    finally:
        _stop(node)


async def test_a_killed_node_restarting_takes_its_jobs_back_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data, local_delay="2", lease_seconds=str(LEASE))
    first = await serve(env, log=tmp_path / "first.log")
    second = None
    try:
        async with httpx.AsyncClient(base_url=first.url) as http:
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
        first.kill()
        killed_at = time.monotonic()
        second = await serve(env, log=tmp_path / "second.log")
        async with httpx.AsyncClient(base_url=second.url) as http:
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
        second.proc.terminate()
        assert await second.exit_status() == 0, second.output()
    finally:
        _stop(first)
        _stop(second)


async def test_serve_refuses_an_inherited_descriptor_it_cannot_listen_on(
        tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        node = start(_env(tmp_path / "data"), "serve", "--fd", str(udp.fileno()),
                     log=tmp_path / "udp.log", listener=udp)
        assert await node.exit_status() == 2
    assert "is not a TCP socket" in node.output()
    assert "Traceback" not in node.output()
