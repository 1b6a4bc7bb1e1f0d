"""A worker killed while it renders a song: another process takes the job over once the
lease lapses, renders the song from the task the local upstream kept on disk, and the
request is charged once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson

from tests.processes import gengate_env, serve

ADMIN = "suno-takeover-admin"
DELAY = 0.2


def _env(data: Path) -> dict[str, str]:
    return gengate_env(data, admin_key=ADMIN, local_delay=str(DELAY), local_scale="0.1",
                       lease_seconds="1", poll_interval="0.1", upstream_poll_interval="0.05")


async def _rendering(upstream: Path, job_id: str) -> Path:
    """The local upstream's folder of the job's task, once its delay is over and its
    render has started (the task is due and no result is kept yet). Nothing signals a
    render's start from outside the process, so this watches the task's clock."""
    log = upstream / "submissions.log"
    async with asyncio.timeout(20):
        while not (log.exists() and job_id in log.read_text()):
            await asyncio.sleep(0.02)
        line = next(x for x in log.read_text().splitlines() if x.startswith(job_id))
        folder = upstream / line.split()[1]
        submitted = orjson.loads((folder / "task.json").read_bytes())["submitted_at"]
        # due at submitted + DELAY; the worker polls every 0.05 s, then renders for seconds
        while time.time() < submitted + DELAY + 0.4:
            await asyncio.sleep(0.02)
    return folder


async def test_song_of_a_killed_worker_is_taken_over(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = await serve(_env(data), log=tmp_path / "first.log")
    second = None
    try:
        async with httpx.AsyncClient(base_url=first.url) as http:
            user = (await http.post("/admin/users", json={"email": "s@x.io", "balance": 10},
                                    headers={"Authorization": f"Bearer {ADMIN}"})).json()
            headers = {"TT-API-KEY": user["data"]["apiKey"]}
            job_id = (await http.post("/suno/v1/music", headers=headers, json={
                "custom": False, "instrumental": False,
                "gpt_description_prompt": "a slow folk song about a ferry"})).json()[
                    "data"]["jobId"]
            folder = await _rendering(data / "local-upstream", job_id)
        first.kill()
        assert not (folder / "result.json").exists()  # killed before the song was kept
        second = await serve(_env(data), log=tmp_path / "second.log")
        async with httpx.AsyncClient(base_url=second.url) as http:
            async with asyncio.timeout(60):
                while True:
                    body = (await http.get("/suno/v2/fetch", params={"jobId": job_id},
                                           headers=headers)).json()
                    if body["status"] in ("SUCCESS", "FAILED"):
                        break
                    assert body["status"] == "ON_QUEUE"
                    await asyncio.sleep(0.05)
            assert body["status"] == "SUCCESS", body
            assert len(body["data"]["musics"]) == 2
            for song in body["data"]["musics"]:
                assert (await http.get(song["audioUrl"])).status_code == 200
            ledger = (await http.get(f"/admin/users/{user['data']['userId']}/ledger",
                                     headers={"Authorization": f"Bearer {ADMIN}"})).json()
        submissions = (data / "local-upstream" / "submissions.log").read_text().split("\n")
        assert sum(1 for line in submissions if line.startswith(job_id)) == 1
        assert ledger["data"]["totals"] == {"topup": 10, "freeze": 6, "settle": 6, "refund": 0,
                                            "overage": 0}
        assert ledger["data"]["user"]["balance"] == 4
    finally:
        for node in (first, second):
            if node is not None:
                await node.shutdown()
