"""Sora and Gemini video relayed to upstreams: a TTAPI-compatible one (a second gengate,
which speaks TTAPI's wire) and OpenAI's video API (its fake, built from OpenAI's
reference). The front stores its own copy of each video; failures refund."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway
from gengate.testing.openai_video import FakeOpenAIVideos


async def _ended(client: httpx.AsyncClient, path: str, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while True:
            body: dict[str, Any] = (await client.get(path, params={"jobId": job_id})).json()
            if body["status"] in ("SUCCESS", "FAILED"):
                return body
            await asyncio.sleep(0.05)


async def _balance(gw: Gateway, key: str) -> float:
    return float((await gw.client(key).get("/midjourney/v1/info")).json()["data"]["balance"])


async def _account(front: Gateway, body: dict[str, Any]) -> None:
    made = await front.http.post("/admin/accounts", json=body,
                                 headers={"Authorization": f"Bearer {front.admin_key}"})
    assert made.status_code == 200, made.text
    assert body["apiKey"] not in made.text


def _seconds(mp4: bytes) -> float:
    with av.open(io.BytesIO(mp4), "r") as container:
        assert container.duration is not None
        return container.duration / 1_000_000


async def test_sora_and_gemini_video_relay_to_a_ttapi_upstream(settings: Settings,
                                                               tmp_path: Path) -> None:
    upstream_settings = settings.model_copy(update={
        "data_dir": tmp_path / "upstream", "local_scale": 0.125,
        "local_fail_marker": "FAILME"})
    front_settings = settings.model_copy(update={"data_dir": tmp_path / "front",
                                                 "local_account": False})
    async with serve_gateway(upstream_settings) as upstream, \
            serve_gateway(front_settings) as front:
        _, operator_key = await upstream.create_user(balance=100, max_queue=20)
        await _account(front, {"name": "tt", "provider": "ttapi",
                               "baseUrl": upstream.base_url, "apiKey": operator_key,
                               "products": ["sora", "gemini_video"]})
        _, key = await front.create_user(balance=20)
        client = front.client(key)
        made = await client.post("/sora/generations", json={
            "model": "sora-2-pro", "prompt": "a harbour at dawn", "duration": 10,
            "orientation": "landscape"})
        assert made.status_code == 200, made.text
        body = await _ended(client, "/sora/fetch", made.json()["data"]["jobId"])
        assert body["status"] == "SUCCESS", body
        video_url = body["data"]["videoUrl"]
        assert video_url.startswith(front.base_url)  # the front's own copy
        mp4 = (await front.http.get(video_url.replace(front.base_url, ""))).content
        assert _seconds(mp4) == 10.0
        assert body["data"]["thumbnailUrl"].startswith(front.base_url)
        assert await _balance(front, key) == 10
        assert await _balance(upstream, operator_key) == 90  # the upstream billed once

        gemini = await client.post("/gemini/video/generations", json={
            "prompt": "a comet over snow", "aspect_ratio": "16:9"})
        done = await _ended(client, "/gemini/video/fetch", gemini.json()["data"]["jobId"])
        assert done["status"] == "SUCCESS" and done["data"]["video_url"].startswith(
            front.base_url)
        assert await _balance(front, key) == 9

        # the upstream's failure is the job's, with its reason, and refunded
        failing = await client.post("/sora/generations", json={
            "model": "sora-2", "prompt": "FAILME a storm"})
        failed = await _ended(client, "/sora/fetch", failing.json()["data"]["jobId"])
        assert failed["status"] == "FAILED" and "told to fail" in failed["message"]
        assert await _balance(front, key) == 9
        # an OpenAI-shaped job of 4 s: TTAPI makes 10, 15 or 25 s, so it fails, refunded
        short = await front.http.post("/v1/videos", json={"prompt": "a boat", "seconds": "4"},
                                      headers={"Authorization": f"Bearer {key}"})
        missed = await _ended(client, "/sora/fetch", short.json()["id"])
        assert missed["status"] == "FAILED" and "not 4" in missed["message"]
        assert await _balance(front, key) == 9


@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
async def test_sora_on_openai_video_api(settings: Settings, tmp_path: Path) -> None:
    front_settings = settings.model_copy(update={"local_account": False})
    async with FakeOpenAIVideos(api_key="sk-upstream") as openai_up, \
            serve_gateway(front_settings) as front:
        await _account(front, {"name": "oa", "provider": "openai",
                               "baseUrl": openai_up.base_url, "apiKey": "sk-upstream",
                               "products": ["sora"], "pollInterval": 0.05})
        _, key = await front.create_user(balance=20)
        auth = {"Authorization": f"Bearer {key}"}
        made = await front.http.post("/v1/videos", headers=auth, json={
            "prompt": "a lighthouse in fog", "model": "sora-2-pro", "seconds": "8",
            "size": "1792x1024"})
        assert made.status_code == 200, made.text
        video_id = made.json()["id"]
        client = front.client(key)
        body = await _ended(client, "/sora/fetch", video_id)
        assert body["status"] == "SUCCESS", body
        # what OpenAI received: its own field names, the key as a bearer token
        assert openai_up.created[0].fields == {"model": "sora-2-pro",
                                               "prompt": "a lighthouse in fog",
                                               "seconds": "8", "size": "1792x1024"}
        assert not openai_up.videos  # forgotten upstream (DELETE) once stored here
        assert ("DELETE", "/v1/videos/video_00000001") in openai_up.requests
        assert ("GET", "/v1/videos/video_00000001/content") in openai_up.requests
        mp4 = (await front.http.get(body["data"]["videoUrl"].replace(front.base_url, ""))
               ).content
        assert _seconds(mp4) == 8.0
        assert body["data"]["thumbnailUrl"].endswith(".webp")
        retrieved = (await front.http.get(f"/v1/videos/{video_id}", headers=auth)).json()
        assert retrieved["status"] == "completed" and retrieved["size"] == "1792x1024"
        assert await _balance(front, key) == 10

        # OpenAI's refusal of the video is the job's failure, with its reason, refunded
        rejected = await front.http.post("/v1/videos", headers=auth, json={
            "prompt": "reject this", "size": "720x1280"})
        failed = await _ended(client, "/sora/fetch", rejected.json()["id"])
        assert failed["status"] == "FAILED" and "moderation" in failed["message"]
        assert await _balance(front, key) == 10
        # a TTAPI-front job of 10 s: OpenAI makes 4, 8 or 12 s
        ttapi = await client.post("/sora/generations", json={"model": "sora-2",
                                                             "prompt": "a bay"})
        missed = await _ended(client, "/sora/fetch", ttapi.json()["data"]["jobId"])
        assert missed["status"] == "FAILED" and "not 10" in missed["message"]
        assert await _balance(front, key) == 10
        assert "sk-upstream" not in str(failed) + str(missed)
