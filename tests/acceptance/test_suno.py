"""Suno end to end on the embedded default: two real songs per request billed once, the
fetch fields and status set of TTAPI's Suno pages, lyrics, extend, concat and upload,
failure with refund, the deadline, and bad input to every path."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import av
import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.products.suno.wire import MODELS
from gengate.testing import Gateway, WebhookReceiver, serve_gateway

V1 = "/suno/v1"
LYRICS = """[Verse]
Rain on the window, grey on the street
Counting the hours with nothing to keep
Lights in the harbour are fading away

[Chorus]
Hold on, hold on, the morning will come
Hold on, hold on, we carry the sun
"""
#: the fields of each song in TTAPI's Suno fetch sample
SONG_FIELDS = {"musicId", "prompt", "title", "tags", "imageUrl", "imageLargeUrl", "audioUrl",
               "videoUrl", "duration", "negativeTags", "styleWeight", "weirdnessConstraint",
               "audioWeight", "createdAt"}


def _settings(settings: Settings, **extra: Any) -> Settings:
    # a tenth of the bars: the same form, rendered quickly
    return settings.model_copy(update={"local_scale": 0.1, "webhook_allow": "127.0.0.1",
                                       **extra})


async def _ended(client: httpx.AsyncClient, job_id: str, path: str = "/suno/v2/fetch",
                 timeout: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(path, params={"jobId": job_id})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert body["status"] in ("ON_QUEUE", "SUCCESS", "FAILED")  # Suno's set
            if body["status"] != "ON_QUEUE":
                return body
            assert body["data"]["progress"].endswith("%")
            await asyncio.sleep(0.02)


async def _submit(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> str:
    response = await client.post(f"{V1}/{path}", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["status"] == "SUCCESS" and data["data"]["jobId"] == data["data"]["job_id"]
    return str(data["data"]["jobId"])


async def _balance(client: httpx.AsyncClient) -> tuple[float, float]:
    data = (await client.get("/midjourney/v1/info")).json()["data"]
    return data["balance"], data["freeze_balance"]


def _decode(data: bytes) -> tuple[np.ndarray, int, float]:
    """Mono samples, sample rate, and the container's duration."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        duration = float(container.duration or 0) / 1e6
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    samples = np.concatenate(frames, axis=1).mean(axis=0)
    return samples, rate, duration


def _tempo(samples: np.ndarray, rate: int) -> float:
    """Beats per minute from the autocorrelation of an onset envelope (energy rises in
    23 ms hops), searched between 50 and 200 BPM."""
    hop = 1024
    frames = len(samples) // hop
    energy = np.square(samples[:frames * hop].reshape(frames, hop)).sum(axis=1)
    onset = np.maximum(0.0, np.diff(np.log1p(energy * 1000)))
    onset -= onset.mean()
    corr = np.correlate(onset, onset, mode="full")[len(onset) - 1:]
    fps = rate / hop
    lags = np.arange(int(fps * 60 / 200), int(fps * 60 / 50) + 1)
    best = lags[int(np.argmax(corr[lags]))]
    # refine between hops with a parabola through the peak
    y0, y1, y2 = corr[best - 1], corr[best], corr[best + 1]
    shift = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) if (y0 - 2 * y1 + y2) else 0.0
    return float(60 * fps / (best + shift))


def _near_tempo(measured: float, expected: float) -> bool:
    return any(abs(measured - expected * k) / (expected * k) < 0.04 for k in (0.5, 1, 2))


async def _get(gw: Gateway, url: str) -> httpx.Response:
    assert url.startswith(gw.base_url)
    response = await gw.http.get(url)
    assert response.status_code == 200
    return response


async def test_custom_song_two_takes_billed_once(settings: Settings) -> None:
    async with WebhookReceiver() as receiver, serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        job_id = await _submit(client, "music", {
            "custom": True, "instrumental": False, "mv": "chirp-v4-5+", "prompt": LYRICS,
            "title": "Harbour Lights", "tags": "sad piano ballad, 72 bpm, in D minor",
            "negative_tags": "drums", "style_weight": 0.6, "weirdness_constraint": 0,
            "vocal_gender": "Female", "hookUrl": receiver.url})
        body = await _ended(client, job_id)
        assert body["status"] == "SUCCESS" and body["message"] == "success", body
        data = body["data"]
        assert data["jobId"] == job_id and data["action"] == "music"
        assert data["progress"] == "100%" and data["mv"] == "chirp-v4-5+"
        assert data["quota"] == "6" and data["hookUrl"] == receiver.url
        songs = data["musics"]
        assert len(songs) == 2 and len({s["musicId"] for s in songs}) == 2
        for song in songs:
            assert set(song) == SONG_FIELDS
            assert song["title"] == "Harbour Lights" and song["prompt"] == LYRICS.strip()
            assert song["tags"] == "sad piano ballad, 72 bpm, in D minor"
            assert song["negativeTags"] == "drums" and song["styleWeight"] == 0.6
            assert song["createdAt"].endswith("Z")
            mp3 = await _get(gw, song["audioUrl"])
            assert mp3.headers["content-type"].startswith("audio/mpeg")
            samples, rate, length = _decode(mp3.content)
            assert abs(length - float(song["duration"])) < 0.2
            # the lyrics' form: intro, a verse of three lines, a chorus of two, outro
            assert 10 < length < 40
            assert _near_tempo(_tempo(samples, rate), 72)
            for field, size in (("imageUrl", 96), ("imageLargeUrl", 128)):
                cover = Image.open(io.BytesIO((await _get(gw, song[field])).content))
                assert cover.format == "JPEG" and cover.size[0] == cover.size[1] >= size
            video = (await _get(gw, song["videoUrl"])).content
            with av.open(io.BytesIO(video), "r") as mp4:
                codecs = {s.type: s.codec_context.name for s in mp4.streams}
                assert codecs == {"video": "h264", "audio": "aac"}
                assert abs(float(mp4.duration or 0) / 1e6 - length) < 1.0
        # two songs, one request's price
        assert await _balance(client) == (14, 0)
        hook = await receiver.next()
        assert orjson.loads(hook.body) == body
        # the deprecated v1 fetch answers the same body
        old = await client.get(f"{V1}/fetch", params={"jobId": job_id})
        assert old.json() == body
        # another product's fetch does not know a Suno job
        assert (await client.get("/midjourney/v1/fetch",
                                 params={"jobId": job_id})).status_code == 404


async def test_inspiration_instrumental_follows_the_description(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        job_id = await _submit(client, "music", {
            "custom": False, "instrumental": True,
            "gpt_description_prompt": "an energetic edm track at 128 bpm about neon cities"})
        body = await _ended(client, job_id)
        assert body["status"] == "SUCCESS" and body["data"]["mv"] == "chirp-v5"
        for song in body["data"]["musics"]:
            samples, rate, _ = _decode((await _get(gw, song["audioUrl"])).content)
            assert _near_tempo(_tempo(samples, rate), 128)
            assert song["title"] and song["prompt"] == ""  # instrumental: no lyrics
        # the same request again (another seed) makes other songs, as Suno does
        again = await _ended(client, await _submit(client, "music", {
            "custom": False, "instrumental": True,
            "gpt_description_prompt": "an energetic edm track at 128 bpm about neon cities"}))
        first = (await _get(gw, body["data"]["musics"][0]["audioUrl"])).content
        second = (await _get(gw, again["data"]["musics"][0]["audioUrl"])).content
        assert first != second


async def test_every_model_is_accepted_and_priced_once(settings: Settings) -> None:
    async with serve_gateway(_settings(settings), with_worker=False) as gw:
        _, key = await gw.create_user(balance=100, max_queue=20)
        client = gw.client(key)
        for mv in MODELS:
            job_id = await _submit(client, "music", {
                "custom": False, "instrumental": False, "mv": mv,
                "gpt_description_prompt": "a song about the sea"})
            queued = (await client.get("/suno/v2/fetch", params={"jobId": job_id})).json()
            assert queued["status"] == "ON_QUEUE" and queued["data"]["mv"] == mv
            assert queued["data"]["musics"] == [] and queued["data"]["progress"] == "0%"
        assert await _balance(client) == (100 - 6 * len(MODELS), 6 * len(MODELS))
        # the OpenAPI document covers every path, the upload as a multipart form
        doc = (await gw.http.get("/openapi.json")).json()
        for path in ("/suno/v1/music", "/suno/v1/lyrics", "/suno/v1/extend",
                     "/suno/v1/concat", "/suno/v1/upload"):
            assert "post" in doc["paths"][path]
        for path in ("/suno/v2/fetch", "/suno/v1/fetch"):
            assert set(doc["paths"][path]) == {"get", "post"}
        assert "multipart/form-data" in doc["paths"]["/suno/v1/upload"]["post"]["requestBody"][
            "content"]
        assert doc["components"]["schemas"]["SunoFetchBody"]["properties"]["status"][
            "enum"] == ["ON_QUEUE", "SUCCESS", "FAILED"]


async def test_failure_refunds_and_calls_back(settings: Settings) -> None:
    failing = _settings(settings, local_fail_marker="shatter")
    async with WebhookReceiver() as receiver, serve_gateway(failing) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await _submit(client, "music", {
            "custom": False, "instrumental": False, "hookUrl": receiver.url,
            "gpt_description_prompt": "a song that will shatter"})
        body = await _ended(client, job_id)
        assert body["status"] == "FAILED" and body["message"] == failing.local_fail_message
        assert body["data"]["progress"] is None and body["data"]["musics"] == []
        assert await _balance(client) == (10, 0)
        assert orjson.loads((await receiver.next()).body) == body


async def test_a_song_past_its_deadline_fails_refunded(settings: Settings) -> None:
    clock = ManualClock()
    hanging = _settings(settings, local_hang_marker="forever")
    async with serve_gateway(hanging, clock=clock) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await _submit(client, "music", {
            "custom": False, "instrumental": True,
            "gpt_description_prompt": "a song that goes on forever"})
        async with asyncio.timeout(10):
            while (await client.get("/suno/v2/fetch", params={"jobId": job_id})).json()[
                    "data"]["progress"] == "0%":
                await asyncio.sleep(0.02)
        assert await _balance(client) == (4, 6)
        clock.advance(601)  # the default timeout of a Suno job is ten minutes
        assert gw.runtime.worker is not None
        gw.runtime.worker.wake()
        body = await _ended(client, job_id)
        assert body["status"] == "FAILED" and body["message"] == "Job Timeout"
        assert await _balance(client) == (10, 0)


async def test_lyrics_extend_concat_and_upload(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=40)
        client = gw.client(key)
        lyrics = await _ended(client, await _submit(client, "lyrics",
                                                    {"prompt": "a lighthouse keeper's song"}))
        assert lyrics["status"] == "SUCCESS" and lyrics["data"]["musics"] == []
        text = lyrics["data"]["lyrics"]["text"]
        assert "[Chorus]" in text and "lighthouse" in text.lower()
        assert lyrics["data"]["lyrics"]["title"]

        song = await _ended(client, await _submit(client, "music", {
            "custom": True, "instrumental": False, "prompt": text,
            "tags": "upbeat pop, 110 bpm", "title": "Keeper"}))
        first = song["data"]["musics"][0]
        at = round(float(first["duration"]) / 2, 1)
        extended = await _ended(client, await _submit(client, "extend", {
            "music_id": first["musicId"], "continue_at": at, "prompt": "[Verse]\nOne more "
            "night on the rocks\nOne more light on the sea"}))
        assert extended["status"] == "SUCCESS" and len(extended["data"]["musics"]) == 2
        assert extended["data"]["musicId"] == first["musicId"]
        part = extended["data"]["musics"][1]
        assert part["tags"] == "upbeat pop, 110 bpm" and part["title"] == "Keeper"
        joined = await _ended(client, await _submit(client, "concat",
                                                    {"music_id": part["musicId"]}))
        assert joined["status"] == "SUCCESS" and joined["data"]["quota"] == "0"
        [whole] = joined["data"]["musics"]
        _, _, length = _decode((await _get(gw, whole["audioUrl"])).content)
        assert abs(length - (at + float(part["duration"]))) < 0.5

        # an uploaded file becomes a song that can be extended
        upload = await client.post(f"{V1}/upload", files={
            "file": ("hum.mp3", (await _get(gw, first["audioUrl"])).content, "audio/mpeg")})
        assert upload.status_code == 200, upload.text
        uploaded = await _ended(client, upload.json()["data"]["jobId"])
        [mine] = uploaded["data"]["musics"]
        assert mine["title"] == "hum" and abs(float(mine["duration"]) -
                                              float(first["duration"])) < 0.2
        again = await _ended(client, await _submit(client, "extend", {
            "music_id": mine["musicId"], "continue_at": 1, "tags": "rock"}))
        assert again["status"] == "SUCCESS"
        # lyrics 1, music 6, extend 6, concat 0, upload 1, extend 6
        assert await _balance(client) == (40 - 20, 0)


BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("music", {"instrumental": False, "gpt_description_prompt": "x"}, 400, "custom: "),
    ("music", {"custom": False, "gpt_description_prompt": "x"}, 400, "instrumental: "),
    ("music", {"custom": False, "instrumental": False}, 400, "gpt_description_prompt: "),
    ("music", {"custom": True, "instrumental": False, "tags": "pop"}, 400, "prompt: "),
    ("music", {"custom": False, "instrumental": False, "mv": "chirp-v9",
               "gpt_description_prompt": "x"}, 400, "mv: "),
    ("music", {"custom": False, "instrumental": False,
               "gpt_description_prompt": "x" * 501}, 400, "gpt_description_prompt: "),
    ("music", {"custom": True, "instrumental": False, "prompt": "la", "title": "t" * 81},
     400, "title: "),
    ("music", {"custom": True, "instrumental": False, "prompt": "la", "tags": "t" * 201},
     400, "tags: "),
    ("music", {"custom": True, "instrumental": False, "prompt": "la", "style_weight": 1.5},
     400, "style_weight: "),
    ("music", {"custom": True, "instrumental": False, "prompt": "la",
               "vocal_gender": "Choir"}, 400, "vocal_gender: "),
    ("music", {"custom": True, "instrumental": False, "prompt": "la",
               "hookUrl": "http://10.0.0.1/x"}, 400, "hookUrl"),
    ("lyrics", {}, 400, "prompt: "),
    ("lyrics", {"prompt": "   "}, 400, "prompt: "),
    ("extend", {"continue_at": 3}, 400, "music_id: "),
    ("extend", {"music_id": "nope", "continue_at": 3}, 400, "music_id: "),
    ("extend", {"music_id": "0b5c-1", "continue_at": -1}, 400, "continue_at: "),
    ("extend", {"music_id": "9f1c2b7e-0000-4000-8000-000000000000-0", "continue_at": 3},
     404, "music_id: "),
    ("concat", {}, 400, "music_id: "),
    ("concat", {"music_id": "9f1c2b7e-0000-4000-8000-000000000000-1"}, 404, "music_id: "),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD)
async def test_bad_input_is_refused_and_free(settings: Settings, path: str,
                                             body: dict[str, Any], status: int,
                                             message: str) -> None:
    async with serve_gateway(_settings(settings), with_worker=False) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        response = await client.post(f"{V1}/{path}", json=body)
        assert response.status_code == status, response.text
        envelope = response.json()
        assert envelope["status"] == "FAILED" and envelope["data"] is None
        assert envelope["message"].startswith(message), envelope
        assert await _balance(client) == (10, 0)


async def test_bad_uploads_and_follow_ups_are_refused(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        as_json = await client.post(f"{V1}/upload", json={"file": "abc"})
        assert as_json.status_code == 415 and "multipart/form-data" in as_json.json()["message"]
        no_file = await client.post(f"{V1}/upload", files={"other": ("a.mp3", b"x")})
        assert no_file.status_code == 400 and no_file.json()["message"].startswith("file: ")
        empty = await client.post(f"{V1}/upload", files={"file": ("a.mp3", b"")})
        assert empty.json()["message"] == "file: is empty"
        huge = await client.post(f"{V1}/upload",
                                 files={"file": ("a.mp3", b"\0" * (12 * 1024 * 1024 + 1))})
        assert huge.status_code in (400, 413)
        assert await _balance(client) == (10, 0)
        # a file that is not audio fails upstream-side, refunded, with a clear message
        junk = await client.post(f"{V1}/upload", files={"file": ("a.mp3", b"not audio")})
        failed = await _ended(client, junk.json()["data"]["jobId"])
        assert failed["status"] == "FAILED" and "file" in failed["message"]
        assert await _balance(client) == (10, 0)
        # concat needs an extension; extend cannot start past the song's end
        lyrics = await _ended(client, await _submit(client, "lyrics", {"prompt": "tides"}))
        refused = await client.post(f"{V1}/concat",
                                    json={"music_id": f"{lyrics['jobId']}-0"})
        assert refused.status_code == 404  # a lyrics job has no song
        song = await _ended(client, await _submit(client, "music", {
            "custom": True, "instrumental": True, "tags": "jazz"}))
        music_id = song["data"]["musics"][0]["musicId"]
        concat = await client.post(f"{V1}/concat", json={"music_id": music_id})
        assert concat.status_code == 400 and "not an extension" in concat.json()["message"]
        past = await client.post(f"{V1}/extend", json={"music_id": music_id,
                                                        "continue_at": 1000})
        assert past.status_code == 400 and past.json()["message"].startswith("continue_at: ")
        assert await _balance(client) == (10 - 1 - 6, 0)
