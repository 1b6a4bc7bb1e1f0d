"""A real headless Chromium plays a Sora video from /cdn and seeks in it: the MP4 is one a
browser decodes (H.264, index first), and /cdn answers the Range requests a player sends.

Needs Debian's ``chromium`` (``make test`` installs it where missing, as root); skips
loudly without it, fails under CI=true."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from playwright.async_api import async_playwright

from gengate.config import Settings
from gengate.testing import serve_gateway
from tests.conftest import need_service

CHROMIUM = "/usr/bin/chromium"

PLAY_AND_SEEK = """async (src) => {
  const video = document.createElement('video');
  video.muted = true;
  video.preload = 'auto';
  document.body.appendChild(video);
  const once = (name) => new Promise((resolve, reject) => {
    video.addEventListener(name, () => resolve(), {once: true});
    video.addEventListener('error', () => reject(new Error('media error ' +
      (video.error && video.error.code))), {once: true});
  });
  const loaded = once('loadedmetadata');
  video.src = src;
  await loaded;
  const facts = {duration: video.duration, width: video.videoWidth,
                 height: video.videoHeight};
  await video.play();
  while (video.currentTime < 0.5) { await once('timeupdate'); }
  facts.played = video.currentTime;
  video.pause();
  const seeked = once('seeked');
  video.currentTime = 7.5;
  await seeked;
  facts.seekedTo = video.currentTime;
  facts.readyState = video.readyState;
  return facts;
}"""


async def test_chromium_plays_and_seeks_a_sora_video(settings: Settings) -> None:
    if shutil.which(CHROMIUM) is None:
        need_service("chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    local = settings.model_copy(update={"local_scale": 0.25})
    async with serve_gateway(local) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        made = await client.post("/sora/generations", json={
            "model": "sora-2", "prompt": "a lighthouse on a cliff at night",
            "orientation": "landscape"})
        job_id = made.json()["data"]["jobId"]
        async with asyncio.timeout(120):
            while (body := (await client.get("/sora/fetch", params={"jobId": job_id})
                            ).json())["status"] not in ("SUCCESS", "FAILED"):
                await asyncio.sleep(0.05)
        assert body["status"] == "SUCCESS", body
        url = body["data"]["videoUrl"]
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
                facts = await page.evaluate(PLAY_AND_SEEK, url)
            finally:
                await browser.close()
        assert abs(facts["duration"] - 10.0) < 0.1
        assert (facts["width"], facts["height"]) == (320, 180)
        assert facts["played"] >= 0.5
        assert abs(facts["seekedTo"] - 7.5) < 0.1 and facts["readyState"] >= 1
        # the player asked for byte ranges and got partial content
        assert any(status == 206 and (header or "").startswith("bytes=")
                   for status, header in ranges), ranges
        head = await gw.http.get(url.replace(gw.base_url, ""), headers={"Range": "bytes=0-0"})
        assert head.status_code == 206 and head.headers["accept-ranges"] == "bytes"
