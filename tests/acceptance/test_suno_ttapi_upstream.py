"""Suno has no official public API: gengate relays it to TTAPI-compatible accounts. Here
the upstream is a second gengate (its Suno routes are TTAPI's), reached over a real
socket with an operator's key: music, lyrics, extend and concat relay, the songs are
copied into the front's storage, and both sides bill one request for two songs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from gengate.config import Settings
from gengate.testing import serve_gateway

V1 = "/suno/v1"


async def _ended(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(90):
        while True:
            body: dict[str, Any] = (await client.get("/suno/v2/fetch",
                                                     params={"jobId": job_id})).json()
            if body["status"] in ("SUCCESS", "FAILED"):
                return body
            await asyncio.sleep(0.05)


async def _run(client: httpx.AsyncClient, path: str, body: dict[str, Any],
               **kwargs: Any) -> dict[str, Any]:
    if kwargs:
        response = await client.post(f"{V1}/{path}", **kwargs)
    else:
        response = await client.post(f"{V1}/{path}", json=body)
    assert response.status_code == 200, response.text
    result = await _ended(client, response.json()["data"]["jobId"])
    assert result["status"] == "SUCCESS", result
    return result


async def test_suno_relays_to_a_ttapi_upstream(settings: Settings, tmp_path: Path) -> None:
    base = settings.model_copy(update={"local_scale": 0.1})
    upstream_settings = base.model_copy(update={"data_dir": tmp_path / "upstream"})
    front_settings = base.model_copy(update={"data_dir": tmp_path / "front",
                                             "local_account": False})
    async with serve_gateway(upstream_settings) as upstream, \
            serve_gateway(front_settings) as front:
        _, operator_key = await upstream.create_user(balance=100, max_queue=20)
        created = await front.http.post(
            "/admin/accounts", headers={"Authorization": f"Bearer {front.admin_key}"},
            json={"name": "tt", "provider": "ttapi", "baseUrl": upstream.base_url,
                  "apiKey": operator_key, "products": ["suno"]})
        assert created.status_code == 200, created.text
        _, key = await front.create_user(balance=50)
        client = front.client(key)

        song = await _run(client, "music", {
            "custom": True, "instrumental": False, "prompt": "[Verse]\nSalt on the wind",
            "tags": "folk, 80 bpm", "title": "Salt", "vocal_gender": "Male"})
        musics = song["data"]["musics"]
        assert len(musics) == 2 and song["data"]["quota"] == "6"
        for music in musics:
            # gengate's own copies, under its own ids
            for field in ("audioUrl", "imageUrl", "imageLargeUrl", "videoUrl"):
                assert music[field].startswith(front.base_url), music
                assert (await client.get(music[field])).status_code == 200
            assert music["musicId"].startswith(song["jobId"])
            assert music["title"] == "Salt" and music["tags"] == "folk, 80 bpm"
        # the upstream ran the same request once, with the user's fields
        up = upstream.client(operator_key)
        listed = (await up.get("/jobs/list", params={"product": "suno"})).json()["data"]
        assert [(j["action"], j["status"]) for j in listed] == [("music", "SUCCESS")]

        lyrics = await _run(client, "lyrics", {"prompt": "a song about salt"})
        assert "[Verse]" in lyrics["data"]["lyrics"]["text"]
        extended = await _run(client, "extend", {"music_id": musics[1]["musicId"],
                                                 "continue_at": 2.5})
        joined = await _run(client, "concat",
                            {"music_id": extended["data"]["musics"][0]["musicId"]})
        whole = float(joined["data"]["musics"][0]["duration"])
        assert abs(whole - (2.5 + float(extended["data"]["musics"][0]["duration"]))) < 0.5
        audio = (await client.get(musics[0]["audioUrl"])).content
        uploaded = await _run(client, "upload", {},
                              files={"file": ("mine.mp3", audio, "audio/mpeg")})
        assert uploaded["data"]["musics"][0]["title"] == "mine"

        listed = (await up.get("/jobs/list", params={"product": "suno"})).json()["data"]
        assert sorted(j["action"] for j in listed) == [
            "concat", "extend", "lyrics", "music", "upload"]
        # the user paid the front; the operator paid the upstream the same prices
        info = (await client.get("/midjourney/v1/info")).json()["data"]
        assert (info["balance"], info["freeze_balance"]) == (50 - 6 - 1 - 6 - 0 - 1, 0)
        up_info = (await up.get("/midjourney/v1/info")).json()["data"]
        assert up_info["balance"] == 100 - 14 and operator_key not in created.text
