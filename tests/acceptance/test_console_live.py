"""The console's playground for every product and its live progress (server-sent events)
without a browser: each product's form makes that product's job, bad input comes back as a
message, another user's job is 404 on every page and stream, and the stream ends with the
job."""

from __future__ import annotations

import asyncio
import re

import httpx
import orjson
import pytest

from gengate.config import Settings
from gengate.console import live
from gengate.console.playground import FORMS
from gengate.testing import Gateway, serve_gateway
from tests.acceptance.test_console import _signin


async def _csrf(http: httpx.AsyncClient, url: str) -> str:
    page = await http.get(url)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None, page.text[:300]
    return token.group(1)


async def _signed_in(gw: Gateway, http: httpx.AsyncClient, balance: float = 100
                     ) -> tuple[int, str]:
    user_id, key = await gw.create_user(balance=balance)
    out = await _signin(gw, http, method="key", key=key)
    assert out.headers["location"] == "/console/home"
    return user_id, key


#: the least each product's form needs
FILLED = {
    "midjourney": {"prompt": "a red fox", "mode": "relax"},
    "flux": {"prompt": "a paper boat", "mode": "flux1-pro", "aspect_ratio": "16:9"},
    "gpt_image": {"prompt": "draw a cup", "model": "gpt-image-2", "aspect_ratio": "4:3"},
    "gemini_image": {"prompt": "a kite", "image_size": "1K"},
    "sora": {"prompt": "a train", "model": "sora-2", "orientation": "landscape",
             "duration": "15"},
    "gemini_video": {"prompt": "rain", "aspect_ratio": "9:16"},
    "suno": {"gpt_description_prompt": "a song about rain", "instrumental": "1"},
}


async def test_every_product_submits_from_the_playground(settings: Settings) -> None:
    async with serve_gateway(settings.model_copy(update={"local_scale": 0.1})) as gw, \
            httpx.AsyncClient() as http:
        user_id, _ = await _signed_in(gw, http, balance=1000)
        page = await http.get(f"{gw.base_url}/console/playground")
        for product in FORMS:
            assert f'/console/playground?product={product}"' in page.text
        csrf = await _csrf(http, f"{gw.base_url}/console/playground")
        for product, fields in FILLED.items():
            out = await http.post(f"{gw.base_url}/console/playground",
                                  data={"csrf": csrf, "product": product, **fields})
            assert out.status_code == 303, (product, out.text)
            location = out.headers["location"]
            found = re.search(r"[?&]job=([0-9a-f-]+)", location)
            assert found is not None, (product, location)
            job = await gw.runtime.jobs.fetch(user_id, found.group(1))
            assert job.product == product
            shown = await http.get(f"{gw.base_url}{location}")
            assert shown.status_code == 200 and 'id="job"' in shown.text
            assert f'data-job="{job.id}"' in shown.text
        jobs = {j.product: j for j in await gw.runtime.jobs.list_jobs(
            user_id, page=1, limit=20, status=None, ascending=False, product=None)}
        assert jobs["flux"].params["model"] == "flux1-pro"
        assert jobs["sora"].params["duration"] == 15  # the model's own int, not "15"
        assert jobs["sora"].params["orientation"] == "landscape"
        assert jobs["gemini_video"].params["aspect_ratio"] == "9:16"
        assert jobs["suno"].params["instrumental"] is True
        assert jobs["midjourney"].mode.value == "relax"


async def test_bad_playground_input_is_a_message(settings: Settings) -> None:
    async with serve_gateway(settings) as gw, httpx.AsyncClient() as http:
        user_id, _ = await _signed_in(gw, http)
        csrf = await _csrf(http, f"{gw.base_url}/console/playground")
        cases = [
            ({"product": "flux", "prompt": "x", "mode": "flux9"}, "mode: use flux1-dev"),
            ({"product": "sora", "prompt": "x", "model": "sora-2", "duration": "11"},
             "duration: use 10, 15, 25"),
            ({"product": "flux", "prompt": "", "mode": "flux1-dev"}, "prompt"),
            ({"product": "suno"}, "gpt_description_prompt"),
            ({"product": "nope", "prompt": "x"}, "product: the playground submits"),
            ({"product": "gemini_video", "prompt": "x" * 5000}, "at most 4000 characters"),
        ]
        for data, message in cases:
            out = await http.post(f"{gw.base_url}/console/playground",
                                  data={"csrf": csrf, **data})
            assert out.status_code == 303, data
            back = await http.get(f"{gw.base_url}{out.headers['location']}")
            assert back.status_code == 200
            assert 'role="alert"' in back.text and message in back.text.replace(
                "&#39;", "'"), (data, back.text[-2000:])
        # what was typed comes back with the message
        out = await http.post(f"{gw.base_url}/console/playground",
                              data={"csrf": csrf, "product": "flux", "prompt": "a swan",
                                    "mode": "flux9"})
        back = await http.get(f"{gw.base_url}{out.headers['location']}")
        assert ">a swan</textarea>" in back.text
        forged = await http.post(f"{gw.base_url}/console/playground",
                                 data={"csrf": "forged", "product": "flux", "prompt": "x",
                                       "mode": "flux1-dev"})
        assert forged.status_code == 403
        unknown = await http.get(f"{gw.base_url}/console/playground?product=nope")
        assert unknown.status_code == 404
        assert await gw.runtime.store.all_jobs(user_id, None, None, 5) == []


async def _events(http: httpx.AsyncClient, url: str) -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    async with http.stream("GET", url, timeout=60) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert "content-security-policy" in answer.headers
        name = ""
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, orjson.loads(line[6:])))
    return out


async def test_progress_streams_until_the_job_ends(settings: Settings) -> None:
    slow = settings.model_copy(update={"local_delay": 1.5, "local_steps": 5})
    async with serve_gateway(slow) as gw, httpx.AsyncClient() as http, \
            httpx.AsyncClient() as other:
        _, key = await _signed_in(gw, http)
        made = await gw.client(key).post("/midjourney/v1/imagine", json={"prompt": "a hat"})
        job_id = made.json()["data"]["jobId"]
        url = f"{gw.base_url}/console/jobs/{job_id}/events"
        events = await _events(http, url)
        names = [name for name, _ in events]
        assert names[-1] == "end" and names.count("end") == 1
        assert set(names[:-1]) == {"progress"}
        progress = [int(str(data["progress"])) for name, data in events if name == "progress"]
        assert progress == sorted(progress) and len(set(progress)) >= 2
        assert events[-1][1]["status"] == "SUCCESS" and events[-1][1]["terminal"] is True
        # a finished job: one progress event and the end, at once
        again = await _events(http, url)
        assert [name for name, _ in again] == ["progress", "end"]
        # someone else's job, or none: 404 before any stream; signed out: to sign-in
        await _signed_in(gw, other)
        assert (await other.get(url)).status_code == 404
        assert (await other.get(f"{gw.base_url}/console/jobs/{job_id}/progress")
                ).status_code == 404
        assert (await other.get(f"{gw.base_url}/console/playground?job={job_id}")
                ).status_code == 404
        assert (await other.get(f"{gw.base_url}/console/jobs/nope/events")).status_code == 404
        async with httpx.AsyncClient() as anonymous:
            out = await anonymous.get(url)
            assert out.status_code == 303 and "/console/signin" in out.headers["location"]


async def test_a_stream_ends_by_itself_and_the_next_goes_on(settings: Settings,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    # a short lifetime: a server shutting down is never held up by an open stream
    monkeypatch.setattr(live, "LIFETIME", 0.6)
    slow = settings.model_copy(update={"local_delay": 6.0, "local_steps": 4})
    async with serve_gateway(slow) as gw, httpx.AsyncClient() as http:
        _, key = await _signed_in(gw, http)
        made = await gw.client(key).post("/midjourney/v1/imagine", json={"prompt": "a map"})
        url = f"{gw.base_url}/console/jobs/{made.json()['data']['jobId']}/events"
        first = await _events(http, url)
        assert first and {name for name, _ in first} == {"progress"}
        assert first[-1][1]["terminal"] is False
        # the next stream starts with the state, and goes on until the end
        names: list[str] = []
        async with asyncio.timeout(60):
            while "end" not in names:
                names = [name for name, _ in await _events(http, url)]
                assert names[0] == "progress"
        assert names[-1] == "end"
