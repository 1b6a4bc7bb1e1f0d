"""The TTAPI adapter against a real upstream: another gengate on a real socket.

Each test drives :class:`TtapiProvider` directly, the way the worker does, and checks what
the upstream did and how every refusal is classified. Answers a gengate never gives (a
hosted TTAPI's ``"50%"`` progress, numbered describe prompts, a broken proxy) come from a
plain socket server or an in-memory transport.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from gengate.config import Settings
from gengate.products.midjourney.providers.ttapi import EXHAUSTED, TtapiProvider
from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)
from gengate.testing import HANG, Gateway, WebhookReceiver, free_port, serve_gateway

HANG_MARKER = "hangforever"


def task(action: str, prompt: str = "", *, images: tuple[bytes, ...] = (),
         aspect: tuple[int, int] = (1, 1), parent: str | None = None) -> ProviderTask:
    return ProviderTask(job_id="local-job", action=action, prompt=prompt, mode="fast", seed=1,
                        aspect=aspect, version="7", images=images, parent_upstream_id=parent)


def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 64), mode: str = "RGB",
        ) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(buf, "PNG")
    return buf.getvalue()


async def finish(provider: TtapiProvider, upstream_id: str,
                 timeout: float = 30.0) -> ProviderUpdate:
    """Poll like the worker until the task ends (bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            update = (await provider.poll_many([upstream_id]))[upstream_id]
            if update.state is not TaskState.RUNNING:
                return update
            await asyncio.sleep(0.02)


async def download(http: httpx.AsyncClient, url: str) -> Image.Image:
    response = await http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


async def refusal(call: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await call
    return caught.value


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def up(settings: Settings) -> AsyncIterator[Gateway]:
    async with serve_gateway(settings.model_copy(update={"local_hang_marker": HANG_MARKER})
                             ) as gateway:
        yield gateway


async def provider_for(up: Gateway, http: httpx.AsyncClient, balance: float = 100,
                       max_queue: int | None = None) -> tuple[TtapiProvider, str]:
    _, key = await up.create_user(balance=balance, max_queue=max_queue)
    return TtapiProvider(up.base_url, api_key=key, http=http, poll_interval=0.05), key


async def test_imagine_then_upsample_seed_and_inpaint(up: Gateway,
                                                      http: httpx.AsyncClient) -> None:
    provider, _ = await provider_for(up, http)
    assert provider.name == "ttapi" and provider.wants_parent_image is False
    await provider.probe()
    grid_id = await provider.submit(task("imagine", "a lighthouse at dusk --ar 3:2"))
    grid = await finish(provider, grid_id)
    assert grid.state is TaskState.SUCCESS and grid.progress == 100 and grid.image is None
    assert grid.image_url is not None
    picture = await download(http, grid.image_url)
    assert picture.width * 2 == picture.height * 3

    one_id = await provider.submit(task("upsample1", parent=grid_id))
    assert one_id != grid_id
    one = await finish(provider, one_id)
    assert one.state is TaskState.SUCCESS and one.image_url is not None
    upscaled = await download(http, one.image_url)
    assert upscaled.width * 2 == upscaled.height * 3
    assert upscaled.tobytes() != picture.tobytes()

    seed = await finish(provider, await provider.submit(task("seed", parent=grid_id)))
    assert seed.state is TaskState.SUCCESS and seed.seed is not None and seed.seed.isdigit()
    assert seed.image_url is None

    mask = Image.new("L", upscaled.size, 0)
    mask.paste(255, (0, 0, upscaled.width // 2, upscaled.height // 2))
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    region = await finish(provider, await provider.submit(
        task("inpaint", "a red boat", images=(buf.getvalue(),), parent=one_id)))
    assert region.state is TaskState.SUCCESS and region.image_url is not None
    await download(http, region.image_url)


async def test_blend_and_describe_send_images(up: Gateway, http: httpx.AsyncClient) -> None:
    provider, _ = await provider_for(up, http)
    blend_id = await provider.submit(task("blend", images=(png((255, 0, 0)), png((0, 0, 255))),
                                          aspect=(2, 3)))
    blended = await finish(provider, blend_id)
    assert blended.state is TaskState.SUCCESS and blended.image_url is not None
    grid = await download(http, blended.image_url)
    assert grid.width * 3 == grid.height * 2  # PORTRAIT

    described = await finish(provider, await provider.submit(
        task("describe", images=(png((200, 20, 20), (80, 40)),))))
    assert described.state is TaskState.SUCCESS
    assert len(described.prompts) == 4
    assert all(p.endswith("--ar 2:1") for p in described.prompts)


async def test_unknown_ids_are_left_out(up: Gateway, http: httpx.AsyncClient) -> None:
    provider, _ = await provider_for(up, http)
    hung = await provider.submit(task("imagine", f"a quiet lake {HANG_MARKER}"))
    answer = await provider.poll_many([hung, "0c1d0e5a-0000-4000-8000-000000000000", hung])
    assert list(answer) == [hung]
    assert answer[hung].state is TaskState.RUNNING
    assert await provider.poll_many([]) == {}


async def test_account_refusals_are_the_accounts(up: Gateway, http: httpx.AsyncClient) -> None:
    wrong = TtapiProvider(up.base_url, api_key="not-a-key", http=http)
    for call in (wrong.submit(task("imagine", "a cat")), wrong.probe(),
                 wrong.poll_many(["0c1d0e5a-0000-4000-8000-000000000000"])):
        assert (await refusal(call)).kind is FailureKind.AUTH

    broke, _ = await provider_for(up, http, balance=0)
    spent = await refusal(broke.submit(task("imagine", "a cat")))
    assert spent.kind is FailureKind.AUTH and str(spent) == EXHAUSTED
    assert (await refusal(broke.probe())).kind is FailureKind.AUTH

    single, _ = await provider_for(up, http, max_queue=1)
    await single.submit(task("imagine", f"a slow cat {HANG_MARKER}"))
    full = await refusal(single.submit(task("imagine", "another cat")))
    assert full.kind is FailureKind.QUEUE_FULL and full.retryable
    assert (await refusal(single.probe())).kind is FailureKind.QUEUE_FULL


async def test_prompt_and_parent_refusals_are_the_jobs(up: Gateway,
                                                       http: httpx.AsyncClient) -> None:
    provider, _ = await provider_for(up, http)
    banned = await refusal(provider.submit(task("imagine", "a n.u.d.e portrait")))
    assert banned.kind is FailureKind.JOB and not banned.retryable
    assert str(banned).startswith("[Banned prompt detected]")
    orphan = await refusal(provider.submit(
        task("upsample1", parent="0c1d0e5a-0000-4000-8000-000000000000")))
    assert orphan.kind is FailureKind.JOB and "not found" in str(orphan)
    invalid = await refusal(provider.submit(task("imagine", "a cat --v 99")))
    assert invalid.kind is FailureKind.JOB and str(invalid).startswith("[Invalid parameter]")


async def test_upstream_rate_limit_carries_retry_after(settings: Settings,
                                                       http: httpx.AsyncClient) -> None:
    async with serve_gateway(settings.model_copy(update={"rate_per_minute": 1})) as up:
        provider, _ = await provider_for(up, http)
        await provider.probe()
        limited = await refusal(provider.submit(task("imagine", "a cat")))
    assert limited.kind is FailureKind.RATE_LIMITED
    assert limited.retry_after is not None and 0 < limited.retry_after <= 60


async def test_a_dead_or_broken_upstream_is_unavailable(http: httpx.AsyncClient) -> None:
    closed = TtapiProvider(f"http://127.0.0.1:{free_port()}", api_key="k" * 24, http=http)
    for call in (closed.submit(task("imagine", "a cat")), closed.probe(),
                 closed.poll_many(["a", "b"])):
        error = await refusal(call)
        assert error.kind is FailureKind.UNAVAILABLE
        assert not error.uncertain  # the request never left
    async with WebhookReceiver([500, 200, 404, HANG]) as broken:
        base = f"http://127.0.0.1:{broken.port}"
        provider = TtapiProvider(base, api_key="k" * 24, http=http, timeout=0.3)
        for _ in range(4):  # 500, a 200 that is not JSON, a 404 endpoint, no answer at all
            error = await refusal(provider.submit(task("imagine", "a cat")))
            assert error.kind is FailureKind.UNAVAILABLE, error
        # only the submit that got no answer may have started a task
        assert error.uncertain
        assert not provider.finds_by_tag and await provider.find("job.1") is None


def _mock(routes: dict[str, httpx.Response]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        return routes[request.url.params.get("jobId", request.url.path)]
    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_hosted_ttapi_answer_shapes() -> None:
    """What api.ttapi.io answers but gengate does not: progress with a percent sign, the
    describe prompts numbered in one text, only a discordImage, a 402 on fetch-free info."""
    numbered = "1\ufe0f\u20e3 a red square --ar 1:1\n\n2\ufe0f\u20e3 a crimson tile\n\n" \
               "3\ufe0f\u20e3 red\n\n4\ufe0f\u20e3 minimal red art"
    routes = {
        "run": httpx.Response(200, json={"status": "ON_QUEUE", "data": {"progress": "42%"}}),
        "queued": httpx.Response(200, json={"status": "PENDING_QUEUE",
                                            "data": {"progress": None}}),
        "desc": httpx.Response(200, json={"status": "SUCCESS", "message": "", "data": {
            "action": "describe", "progress": "100", "prompt": numbered, "cdnImage": None}}),
        "grid": httpx.Response(200, json={"status": "SUCCESS", "data": {
            "action": "imagine", "progress": 100, "cdnImage": None,
            "discordImage": "https://cdn.example/x.png"}}),
        "bad": httpx.Response(200, json={"status": "FAILED", "message": "Job Timeout",
                                         "data": {"progress": None}}),
        "flaky": httpx.Response(502, text="bad gateway"),
    }
    async with _mock(routes) as client:
        provider = TtapiProvider("https://api.example", api_key="secret", http=client)
        got = await provider.poll_many(list(routes))
    assert got["run"] == ProviderUpdate(TaskState.RUNNING, progress=42)
    assert got["queued"] == ProviderUpdate(TaskState.RUNNING, progress=0)
    assert got["desc"].prompts == ("a red square --ar 1:1", "a crimson tile", "red",
                                   "minimal red art")
    assert got["grid"].image_url == "https://cdn.example/x.png"
    assert got["bad"] == ProviderUpdate(TaskState.FAILED, message="Job Timeout")
    assert got["flaky"].state is TaskState.RUNNING  # one fetch failing is not the task lost

    info = {"/midjourney/v1/info": httpx.Response(200, json={
        "status": "SUCCESS", "data": {"balance": 0, "freeze_balance": 0, "max_queue": 10}})}
    async with _mock(info) as client:
        provider = TtapiProvider("https://api.example", api_key="secret", http=client)
        empty = await refusal(provider.probe())
    assert empty.kind is FailureKind.AUTH and str(empty) == EXHAUSTED


async def test_the_key_never_leaks(up: Gateway, http: httpx.AsyncClient,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider, key = await provider_for(up, http, balance=0)
    dead = TtapiProvider(f"http://127.0.0.1:{free_port()}", api_key=key, http=http)
    echo = {"/midjourney/v1/imagine": httpx.Response(400, json={
        "status": "FAILED", "message": f"[Invalid parameter] bad key {key}", "data": None})}
    errors = [
        await refusal(provider.submit(task("imagine", "a cat"))),
        await refusal(provider.probe()),
        await refusal(provider.submit(task("imagine", "a n.u.d.e cat"))),
        await refusal(dead.submit(task("imagine", "a cat"))),
    ]
    async with _mock(echo) as client:
        echoing = TtapiProvider("https://api.example", api_key=key, http=client)
        errors.append(await refusal(echoing.submit(task("imagine", "a cat"))))
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [repr(provider), repr(dead), caplog.text]
    assert all(key not in text for text in texts)
    assert "***" in str(errors[-1])


async def test_the_slots_mode_and_the_jobs_timeout_reach_the_upstream(
        up: Gateway, http: httpx.AsyncClient) -> None:
    """A job placed in a relax slot runs as relax upstream whatever speed flag its prompt
    had, and the upstream waits as long as the job does (not its own 300/600 s)."""
    provider, _ = await provider_for(up, http)
    relax = ProviderTask(job_id="local-job", action="imagine", prompt="a dune --fast",
                         mode="relax", params={"timeout": 900})
    upstream_id = await provider.submit(relax)
    job = await up.runtime.store.get_job(upstream_id)
    assert job is not None
    assert job.mode.value == "relax" and job.timeout == 900
    fast = ProviderTask(job_id="local-job-2", action="imagine", prompt="a dune", mode="fast",
                        params={"timeout": 1000})
    other = await up.runtime.store.get_job(await provider.submit(fast))
    assert other is not None and other.mode.value == "fast" and other.timeout == 1000
