"""A real headless Chromium plays a Sora video and a Suno song from /cdn and seeks in
them: the MP4 and the MP3 are files a browser decodes (H.264 with its index first; MPEG
audio layer III), and /cdn answers the Range requests a player sends.

Needs Debian's ``chromium`` (``make test`` installs it where missing, as root); skips
loudly without it, fails under CI=true."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import httpx
from playwright.async_api import async_playwright

from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway
from tests.conftest import need_service

CHROMIUM = "/usr/bin/chromium"

PLAY_AND_SEEK = """async ([tag, src, seekTo]) => {
  const media = document.createElement(tag);
  media.muted = true;
  media.preload = 'auto';
  document.body.appendChild(media);
  const once = (name) => new Promise((resolve, reject) => {
    media.addEventListener(name, () => resolve(), {once: true});
    media.addEventListener('error', () => reject(new Error('media error ' +
      (media.error && media.error.code))), {once: true});
  });
  const loaded = once('loadedmetadata');
  media.src = src;
  await loaded;
  const facts = {duration: media.duration, width: media.videoWidth || 0,
                 height: media.videoHeight || 0};
  await media.play();
  while (media.currentTime < 0.5) { await once('timeupdate'); }
  facts.played = media.currentTime;
  media.pause();
  const seeked = once('seeked');
  media.currentTime = seekTo;
  await seeked;
  facts.seekedTo = media.currentTime;
  facts.readyState = media.readyState;
  // and it plays on from there
  await media.play();
  while (media.currentTime < seekTo + 0.3) { await once('timeupdate'); }
  facts.playedOnTo = media.currentTime;
  media.pause();
  return facts;
}"""


async def _play(gw: Gateway, tag: str, url: str, seek_to: float,
                ) -> tuple[dict[str, Any], list[tuple[int, str | None]]]:
    """What Chromium's ``<video>``/``<audio>`` saw playing ``url`` and seeking to
    ``seek_to``, and the (status, Range header) of each request it made for the file."""
    ranges: list[tuple[int, str | None]] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                           args=["--no-sandbox", "--mute-audio"])
        try:
            page = await browser.new_page()

            async def record(request: Any) -> None:
                if request.url == url:
                    response = await request.response()
                    ranges.append((response.status if response else 0,
                                   await request.header_value("range")))

            page.on("requestfinished", record)
            # a page of the same origin as /cdn (not /status: its CSP allows no media)
            await page.goto(f"{gw.base_url}/healthz")
            async with asyncio.timeout(60):
                facts: dict[str, Any] = await page.evaluate(PLAY_AND_SEEK, [tag, url, seek_to])
        finally:
            await browser.close()
    return facts, ranges


async def _ended(client: httpx.AsyncClient, path: str, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while (body := (await client.get(path, params={"jobId": job_id}))
               .json())["status"] not in ("SUCCESS", "FAILED"):
            await asyncio.sleep(0.05)
    assert body["status"] == "SUCCESS", body
    return dict(body["data"])


def _need_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        need_service("chromium", f"{CHROMIUM} is missing (apt-get install chromium)")


def _asked_for_ranges(ranges: list[tuple[int, str | None]]) -> bool:
    """The player asked for byte ranges and got partial content."""
    return any(status == 206 and (header or "").startswith("bytes=")
               for status, header in ranges)


async def test_chromium_plays_and_seeks_a_sora_video(settings: Settings) -> None:
    _need_chromium()
    local = settings.model_copy(update={"local_scale": 0.25})
    async with serve_gateway(local) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        made = await client.post("/sora/generations", json={
            "model": "sora-2", "prompt": "a lighthouse on a cliff at night",
            "orientation": "landscape"})
        url = (await _ended(client, "/sora/fetch", made.json()["data"]["jobId"]))["videoUrl"]
        facts, ranges = await _play(gw, "video", url, 7.5)
        assert abs(facts["duration"] - 10.0) < 0.1
        assert (facts["width"], facts["height"]) == (320, 180)
        assert facts["played"] >= 0.5
        assert abs(facts["seekedTo"] - 7.5) < 0.1 and facts["readyState"] >= 1
        assert facts["playedOnTo"] >= 7.8
        assert _asked_for_ranges(ranges), ranges
        head = await gw.http.get(url.replace(gw.base_url, ""), headers={"Range": "bytes=0-0"})
        assert head.status_code == 206 and head.headers["accept-ranges"] == "bytes"


async def test_chromium_plays_and_seeks_a_suno_song(settings: Settings) -> None:
    _need_chromium()
    # a tenth of the bars: the song's form, rendered quickly
    local = settings.model_copy(update={"local_scale": 0.1})
    async with serve_gateway(local) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        made = await client.post("/suno/v1/music", json={
            "custom": True, "instrumental": True, "title": "Night Ferry",
            "tags": "lo-fi piano, 80 bpm, in F"})
        job_id = made.json()["data"]["jobId"]
        song = (await _ended(client, "/suno/v2/fetch", job_id))["musics"][0]
        url, length = song["audioUrl"], float(song["duration"])
        assert url.startswith(f"{gw.base_url}/cdn/") and url.endswith(".mp3")
        seek_to = round(length * 0.6, 1)
        facts, ranges = await _play(gw, "audio", url, seek_to)
        # MP3 frames carry no exact length: the player's estimate is close to the song's
        assert abs(facts["duration"] - length) < 0.5, (facts, length)
        assert facts["played"] >= 0.5
        assert abs(facts["seekedTo"] - seek_to) < 0.1 and facts["readyState"] >= 1
        assert facts["playedOnTo"] >= seek_to + 0.3
        assert _asked_for_ranges(ranges), ranges
        whole = (await gw.http.get(url.replace(gw.base_url, ""))).content
        part = await gw.http.get(url.replace(gw.base_url, ""),
                                 headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.headers["content-type"] == "audio/mpeg"
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(whole)}"
        assert part.content == whole[1000:2000]
