"""Sora and Gemini video on the embedded default: real MP4s made by the local renderer,
stored and served from /cdn (Range, video/mp4), fetched in each product's own shape,
billed once, refunded on failure and at the deadline; OpenAI's SDK against /v1/videos."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from typing import Any

import av
import httpx
import openai
import orjson
import pytest
from PIL import Image

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.testing import Gateway, WebhookReceiver, serve_gateway

# OpenAI's SDK warns that its hosted Sora API is scheduled to close; gengate's front stays
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

SORA_KEYS = {"jobId", "model", "prompt", "referImages", "videoUrl", "thumbnailUrl",
             "duration", "orientation", "size", "quota", "finishTime", "hookUrl"}
GEMINI_KEYS = {"jobId", "model", "prompt", "aspect_ratio", "reference_images", "video_url",
               "thumbnail_url", "quota", "hookUrl"}


def _settings(settings: Settings, **extra: Any) -> Settings:
    # a quarter of the frame size keeps renders quick; durations stay as requested
    return settings.model_copy(update={"local_scale": 0.25, "webhook_allow": "127.0.0.1",
                                       "local_fail_marker": "FAILME", **extra})


async def _ended(client: httpx.AsyncClient, path: str, job_id: str,
                 seen: set[str]) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while True:
            body: dict[str, Any] = (await client.get(path, params={"jobId": job_id})).json()
            seen.add(body["status"])
            if body["status"] in ("SUCCESS", "FAILED"):
                return body
            await asyncio.sleep(0.05)


async def _balance(gw: Gateway, key: str) -> tuple[float, float]:
    data = (await gw.client(key).get("/midjourney/v1/info")).json()["data"]
    return data["balance"], data["freeze_balance"]


def _probe(mp4: bytes) -> tuple[str, int, int, float, int]:
    with av.open(io.BytesIO(mp4), "r") as container:
        stream = container.streams.video[0]
        frames = len(list(container.decode(video=0)))
        assert container.duration is not None
        return (stream.codec_context.name, stream.width, stream.height,
                container.duration / 1_000_000, frames)


async def test_sora_video_end_to_end(settings: Settings) -> None:
    async with WebhookReceiver() as receiver, serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        made = await client.post("/sora/generations", json={
            "model": "sora-2", "prompt": "a misty mountain lake at sunset",
            "orientation": "landscape", "seed": 7, "hookUrl": receiver.url})
        assert made.status_code == 200, made.text
        job_id = made.json()["data"]["jobId"]
        assert uuid.UUID(job_id).version == 7  # time-ordered, like every product's job ids
        seen: set[str] = set()
        body = await _ended(client, "/sora/fetch", job_id, seen)
        assert seen <= {"PENDING_QUEUE", "ON_QUEUE", "SUCCESS"}
        assert body["status"] == "SUCCESS" and body["message"] == ""
        data = body["data"]
        assert set(data) == SORA_KEYS
        assert data["quota"] == "3" and data["duration"] == 10 and data["size"] == "1280x720"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", data["finishTime"])
        assert await _balance(gw, key) == (17, 0)
        assert orjson.loads((await receiver.next()).body) == body
        # the stored video: H.264, the requested duration and orientation (scaled frame)
        path = data["videoUrl"].replace(gw.base_url, "")
        whole = await gw.http.get(path)
        assert whole.headers["content-type"] == "video/mp4"
        assert _probe(whole.content) == ("h264", 320, 180, 10.0, 240)
        # a browser seeks with Range requests
        part = await gw.http.get(path, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
        thumb = await gw.http.get(data["thumbnailUrl"].replace(gw.base_url, ""))
        assert Image.open(io.BytesIO(thumb.content)).size == (320, 180)
        # POST fetch with a JSON body answers the same
        again = await client.post("/sora/fetch", json={"jobId": job_id})
        assert again.json() == body
        # the same prompt and seed draw the same picture (the first frame is the thumbnail)
        twin = await client.post("/sora/generations", json={
            "model": "sora-2", "prompt": "a misty mountain lake at sunset",
            "orientation": "landscape", "seed": 7})
        twin_body = await _ended(client, "/sora/fetch", twin.json()["data"]["jobId"], seen)
        twin_thumb = await gw.http.get(twin_body["data"]["thumbnailUrl"].replace(gw.base_url,
                                                                                 ""))
        assert twin_thumb.content == thumb.content


async def test_sora_failure_and_deadline_refund(settings: Settings) -> None:
    clock = ManualClock()
    async with WebhookReceiver() as receiver, serve_gateway(
            _settings(settings, local_hang_marker="HANGME"), clock=clock) as gw:
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        failing = await client.post("/sora/generations", json={
            "model": "sora-2-pro", "prompt": "FAILME a city", "hookUrl": receiver.url})
        body = await _ended(client, "/sora/fetch", failing.json()["data"]["jobId"], set())
        assert body["status"] == "FAILED" and body["message"]
        assert body["data"]["videoUrl"] is None
        assert orjson.loads((await receiver.next()).body)["status"] == "FAILED"
        assert await _balance(gw, key) == (20, 0)
        hung = await client.post("/sora/generations", json={
            "model": "sora-2", "prompt": "HANGME a forest"})
        hung_id = hung.json()["data"]["jobId"]
        async with asyncio.timeout(20):
            while (await client.get("/sora/fetch", params={"jobId": hung_id})).json()[
                    "status"] != "ON_QUEUE":
                await asyncio.sleep(0.02)
        assert await _balance(gw, key) == (17, 3)
        clock.advance(301)  # past the default (and minimum) timeout of 300 s
        late = await _ended(client, "/sora/fetch", hung_id, set())
        assert late["status"] == "FAILED"
        assert await _balance(gw, key) == (20, 0)


async def test_gemini_video_end_to_end(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=5)
        client = gw.client(key)
        made = await client.post("/gemini/video/generations", json={
            "prompt": "neon city at night in the rain", "aspect_ratio": "9:16"})
        assert made.status_code == 200, made.text
        job_id = made.json()["data"]["jobId"]
        seen: set[str] = set()
        body = await _ended(client, "/gemini/video/fetch", job_id, seen)
        assert seen <= {"RUNNING", "SUCCESS"} and body["status"] == "SUCCESS"
        assert set(body["data"]) == GEMINI_KEYS and body["data"]["quota"] == "1"
        mp4 = (await gw.http.get(body["data"]["video_url"].replace(gw.base_url, ""))).content
        assert _probe(mp4) == ("h264", 180, 320, 8.0, 192)
        assert await _balance(gw, key) == (4, 0)
        failed = await client.post("/gemini/video/generations", json={
            "prompt": "FAILME", "aspect_ratio": "16:9"})
        end = await _ended(client, "/gemini/video/fetch", failed.json()["data"]["jobId"], seen)
        assert end["status"] == "FAILED" and seen <= {"RUNNING", "SUCCESS", "FAILED"}
        assert await _balance(gw, key) == (4, 0)
        # a Sora fetch does not show a Gemini job
        assert (await client.get("/sora/fetch", params={"jobId": job_id})).status_code == 404


BAD_SORA: list[tuple[dict[str, Any], str]] = [
    ({"prompt": "a cat"}, "model: is required"),
    ({"model": "sora-3", "prompt": "a cat"}, "model:"),
    ({"model": "sora-2"}, "prompt: is required"),
    ({"model": "sora-2", "prompt": ""}, "prompt:"),
    ({"model": "sora-2", "prompt": "x" * 4001}, "prompt:"),
    ({"model": "sora-2", "prompt": "a cat", "duration": 25},
     "duration: sora-2 makes 10, 15 second videos"),
    ({"model": "sora-2", "prompt": "a cat", "duration": 12}, "duration:"),
    ({"model": "sora-2", "prompt": "a cat", "size": "large"},
     "size: only sora-2-pro takes a size"),
    ({"model": "sora-2-pro", "prompt": "a cat", "size": "large", "duration": 25},
     "duration: 25 second videos are only made at size small"),
    ({"model": "sora-2", "prompt": "a cat", "orientation": "square"}, "orientation:"),
    ({"model": "sora-2", "prompt": "a cat", "character_timestamps": "1,9"},
     "character_timestamps: the span must be 1 to 3 seconds"),
    ({"model": "sora-2", "prompt": "a cat", "character_timestamps": "a,b"},
     "character_timestamps:"),
    ({"model": "sora-2", "prompt": "a cat", "referImages": ["x"] * 9}, "referImages:"),
    ({"model": "sora-2", "prompt": "a cat", "referImages": ["http://127.0.0.1/a.png"]},
     "referImages"),
    ({"model": "sora-2", "prompt": "a cat", "seed": -1}, "seed:"),
    ({"model": "sora-2", "prompt": "a cat", "hookUrl": "x" * 3000}, "hookUrl:"),
]
BAD_GEMINI: list[tuple[dict[str, Any], str]] = [
    ({"prompt": "a cat"}, "aspect_ratio: is required"),
    ({"prompt": "a cat", "aspect_ratio": "1:1"}, "aspect_ratio:"),
    ({"prompt": "a cat", "aspect_ratio": "16:9", "model": "veo"}, "model:"),
    ({"aspect_ratio": "16:9"}, "prompt: is required"),
    ({"prompt": "a cat", "aspect_ratio": "16:9", "reference_images": "nope"},
     "reference_images:"),
]


@pytest.mark.parametrize(("product", "body", "message"), [
    *(("/sora/generations", b, m) for b, m in BAD_SORA),
    *(("/gemini/video/generations", b, m) for b, m in BAD_GEMINI)])
async def test_bad_video_requests_are_refused_and_free(settings: Settings, product: str,
                                                       body: dict[str, Any],
                                                       message: str) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        answer = await client.post(product, json=body)
        assert answer.status_code == 400, answer.text
        out = answer.json()
        assert out["status"] == "FAILED" and out["message"].startswith(message), out
        assert await _balance(gw, key) == (20, 0)


async def test_bad_transport_on_video_paths(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        for path in ("/sora/generations", "/gemini/video/generations"):
            assert (await client.get(path)).status_code == 405
            text = await client.post(path, content=b"{", headers={
                "Content-Type": "application/json"})
            assert text.status_code == 400 and text.json()["message"].startswith("body:")
            form = await client.post(path, data={"prompt": "x"})
            assert form.status_code == 415
            anon = await gw.http.post(path, json={"prompt": "x"})
            assert anon.status_code == 401 and anon.json()["status"] == "FAILED"
        assert (await client.get("/sora/fetch")).json()["message"] == "jobId: is required"
        assert (await client.get("/gemini/video/fetch",
                                 params={"jobId": "nope"})).status_code == 404
        assert (await client.post("/gemini/video/fetch")).status_code == 405
        assert await _balance(gw, key) == (20, 0)


async def test_openai_sdk_against_the_video_front(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=20)
        sdk = openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key=key, max_retries=0)
        video = await sdk.videos.create(prompt="a snowy mountain at dawn", model="sora-2",
                                        seconds="4", size="1280x720")
        assert video.object == "video" and video.status in ("queued", "in_progress")
        assert video.seconds == "4" and video.size == "1280x720"
        async with asyncio.timeout(120):
            while video.status in ("queued", "in_progress"):
                await asyncio.sleep(0.05)
                video = await sdk.videos.retrieve(video.id)
        assert video.status == "completed" and video.progress == 100 and video.error is None
        content = await sdk.videos.download_content(video.id)
        assert _probe(content.content) == ("h264", 320, 180, 4.0, 96)
        thumb = await sdk.videos.download_content(video.id, variant="thumbnail")
        assert Image.open(io.BytesIO(thumb.content)).format == "JPEG"
        # the same job is a Sora job on the TTAPI fetch too
        ttapi = (await gw.client(key).get("/sora/fetch", params={"jobId": video.id})).json()
        assert ttapi["status"] == "SUCCESS" and ttapi["data"]["duration"] == 4
        assert await _balance(gw, key) == (17, 0)

        # failures: the job's error object
        failed = await sdk.videos.create(prompt="FAILME", model="sora-2-pro",
                                         size="1792x1024")
        async with asyncio.timeout(60):
            while failed.status in ("queued", "in_progress"):
                await asyncio.sleep(0.05)
                failed = await sdk.videos.retrieve(failed.id)
        assert failed.status == "failed" and failed.error is not None
        assert await _balance(gw, key) == (17, 0)

        # bad input: OpenAI's error shape, the field as param, nothing charged
        with pytest.raises(openai.BadRequestError) as bad:
            await sdk.videos.create(prompt="a cat", model="sora-2", size="1792x1024")
        assert bad.value.param == "size" and "sora-2 makes" in bad.value.message
        with pytest.raises(openai.BadRequestError) as bad:
            await sdk.videos.create(prompt="a cat", model="sora-9")
        assert bad.value.param == "model"
        with pytest.raises(openai.BadRequestError) as bad:
            await sdk.videos.create(prompt="a cat", seconds="5")  # type: ignore[arg-type]
        assert bad.value.param == "seconds"
        with pytest.raises(openai.NotFoundError):
            await sdk.videos.retrieve("no-such-video")
        async with openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key="wrong",
                                      max_retries=0) as stranger:
            with pytest.raises(openai.AuthenticationError):
                await stranger.videos.retrieve(video.id)
        assert await _balance(gw, key) == (17, 0)
        raw = await gw.http.post("/v1/videos", json={"prompt": "a cat", "size": "1x1"},
                                 headers={"Authorization": f"Bearer {key}"})
        assert raw.status_code == 400 and raw.json()["error"]["param"] == "size"
        assert raw.json()["error"]["type"] == "invalid_request_error"
        gone = await gw.http.delete(f"/v1/videos/{video.id}",
                                    headers={"Authorization": f"Bearer {key}"})
        assert gone.status_code == 405 and "error" in gone.json()
        await sdk.close()


async def test_openapi_documents_the_video_paths(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        doc = (await gw.http.get("/openapi.json")).json()
        for path, method in (("/sora/generations", "post"), ("/sora/fetch", "get"),
                             ("/sora/fetch", "post"), ("/gemini/video/generations", "post"),
                             ("/gemini/video/fetch", "get"), ("/v1/videos", "post"),
                             ("/v1/videos/{video_id}", "get"),
                             ("/v1/videos/{video_id}/content", "get")):
            assert method in doc["paths"][path], (path, method)
        schemas = doc["components"]["schemas"]
        assert schemas["GeminivideoFetchBody"]["properties"]["status"]["enum"] == [
            "RUNNING", "SUCCESS", "FAILED"]
        assert schemas["SoraFetchBody"]["properties"]["status"]["enum"] == [
            "PENDING_QUEUE", "ON_QUEUE", "SUCCESS", "FAILED"]
        assert "SoraGenerationRequest" in schemas and "VideoCreateRequest" in schemas


async def test_bad_input_to_the_openai_video_front(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=20)
        auth = {"Authorization": f"Bearer {key}"}

        async def refused(response: httpx.Response, status: int, param: str | None) -> None:
            assert response.status_code == status, response.text
            error = response.json()["error"]
            assert error["param"] == param and error["message"], error

        await refused(await gw.http.post("/v1/videos", headers=auth, json={}), 400, "prompt")
        await refused(await gw.http.post("/v1/videos", headers=auth,
                                         json={"prompt": "x" * 32001}), 400, "prompt")
        await refused(await gw.http.post("/v1/videos", headers=auth,
                                         json={"prompt": "a", "model": "m" * 65}), 400, "model")
        await refused(await gw.http.post("/v1/videos", content=b"[1]", headers={
            **auth, "Content-Type": "application/json"}), 400, "body")
        # a multipart form with a file that is not input_reference
        await refused(await gw.http.post("/v1/videos", headers=auth, data={"prompt": "a"},
                                         files={"video": ("v.mp4", b"x")}), 400, "video")
        await refused(await gw.http.post("/v1/videos", content=b"prompt=a", headers={
            **auth, "Content-Type": "text/plain"}), 415, None)
        await refused(await gw.http.get("/v1/videos", headers=auth), 405, None)
        await refused(await gw.http.get("/v1/videos/not-a-video/content", headers=auth),
                      404, "video_id")
        await refused(await gw.http.get("/v1/videos/" + "x" * 65, headers=auth),
                      404, "video_id")
        # another user's video is not found either; a queued video has no content yet
        made = await gw.http.post("/v1/videos", headers=auth, json={"prompt": "a cat"})
        video_id = made.json()["id"]
        _, other = await gw.create_user(balance=5)
        await refused(await gw.http.get(f"/v1/videos/{video_id}",
                                        headers={"Authorization": f"Bearer {other}"}),
                      404, "video_id")
        await refused(await gw.http.get(f"/v1/videos/{video_id}/content", headers=auth),
                      404, "video_id")
        await refused(await gw.http.get(f"/v1/videos/{video_id}/content",
                                        params={"variant": "spritesheet"}, headers=auth),
                      400, "variant")
        info = (await gw.client(key).get("/midjourney/v1/info")).json()["data"]
        assert (info["balance"], info["freeze_balance"]) == (17, 3)  # only the one video
