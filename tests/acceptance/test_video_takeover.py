"""A worker killed while a video (Sora, Gemini video) is being rendered: another process
takes the job over once the lease lapses, renders the video from the recorded upstream
task, and charges once; the killed process's render worker does not linger."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tests.processes import gengate_env, serve

ADMIN = "video-takeover-admin"


def _env(data: Path, tmp: Path) -> dict[str, str]:
    # the renderer's scratch files show when a render is under way
    return gengate_env(data, TMPDIR=str(tmp), admin_key=ADMIN, local_delay="1.5",
                       lease_seconds="1", local_scale="0.25", poll_interval="0.1",
                       upstream_poll_interval="0.05")


def _processes_of(scratch: Path) -> list[int]:
    """Processes started with this test's scratch folder (the servers and their render
    workers)."""
    marker = f"TMPDIR={scratch}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


PRODUCTS = [
    ("/sora/generations", {"model": "sora-2", "prompt": "a desert at golden hour"},
     "/sora/fetch", "videoUrl", 10, 3),
    ("/gemini/video/generations", {"prompt": "a desert at golden hour",
                                   "aspect_ratio": "16:9"},
     "/gemini/video/fetch", "video_url", 8, 1),
]


@pytest.mark.parametrize(("submit", "body", "fetch", "field", "seconds", "price"), PRODUCTS)
async def test_video_of_a_killed_worker_is_taken_over(
        tmp_path: Path, submit: str, body: dict[str, Any], fetch: str, field: str,
        seconds: int, price: int) -> None:
    data, scratch = tmp_path / "data", tmp_path / "tmp"
    scratch.mkdir()
    first = await serve(_env(data, scratch), log=tmp_path / "first.log")
    second = None
    try:
        async with httpx.AsyncClient(base_url=first.url) as http:
            user = (await http.post("/admin/users", json={"email": "v@x.io", "balance": 10},
                                    headers={"Authorization": f"Bearer {ADMIN}"})).json()
            headers = {"TT-API-KEY": user["data"]["apiKey"]}
            job_id = (await http.post(submit, headers=headers, json=body)
                      ).json()["data"]["jobId"]
            async with asyncio.timeout(60):
                # killed mid-render: once the encoder has opened its scratch file
                while not any(scratch.glob("gengate-video-*/out.mp4")):
                    assert (await http.get(fetch, params={"jobId": job_id}, headers=headers)
                            ).json()["status"] in ("PENDING_QUEUE", "ON_QUEUE", "RUNNING")
                    await asyncio.sleep(0.02)
        first.kill()
        second = await serve(_env(data, scratch), log=tmp_path / "second.log")
        async with httpx.AsyncClient(base_url=second.url) as http:
            async with asyncio.timeout(60):
                while True:
                    ended = (await http.get(fetch, params={"jobId": job_id},
                                            headers=headers)).json()
                    if ended["status"] in ("SUCCESS", "FAILED"):
                        break
                    await asyncio.sleep(0.05)
            assert ended["status"] == "SUCCESS", ended
            mp4 = (await http.get(ended["data"][field])).content
            with av.open(io.BytesIO(mp4), "r") as container:
                assert container.duration == seconds * 1_000_000
            ledger = (await http.get(f"/admin/users/{user['data']['userId']}/ledger",
                                     headers={"Authorization": f"Bearer {ADMIN}"})).json()
        submissions = (data / "local-upstream" / "submissions.log").read_text().split("\n")
        assert sum(1 for line in submissions if line.startswith(job_id)) == 1
        assert ledger["data"]["totals"] == {"topup": 10, "freeze": price, "settle": price,
                                             "refund": 0,
                                             "overage": 0}
    finally:
        for node in (first, second):
            if node is not None:
                await node.shutdown()
    # the render workers follow their servers out, the killed one's too
    async with asyncio.timeout(10):
        while _processes_of(scratch):
            await asyncio.sleep(0.1)
