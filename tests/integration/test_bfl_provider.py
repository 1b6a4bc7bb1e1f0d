"""The Black Forest Labs adapter against the fake BFL API on a real socket.

Each test drives :class:`BflProvider` the way the worker does (submit, poll, download the
sample) with the fake's manual clock, and checks what the upstream received and how every
status and refusal is classified.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from gengate.providers.base import FailureKind, ProviderError, ProviderTask, TaskState
from gengate.providers.bfl import BflProvider
from gengate.testing.bfl import FakeBfl

KEY = "bfl-test-key"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bfl(clock: Clock) -> AsyncIterator[FakeBfl]:
    async with FakeBfl(keys=(KEY,), duration=5.0, clock=clock, scale=0.25) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def adapter(bfl: FakeBfl, http: httpx.AsyncClient, key: str = KEY) -> BflProvider:
    return BflProvider(bfl.base_url, api_key=key, http=http)


def task(prompt: str = "a lighthouse at sunset over the sea", *, model: str = "flux-kontext-pro",
         width: int = 1024, height: int = 1024, images: tuple[bytes, ...] = (),
         **extra: object) -> ProviderTask:
    return ProviderTask(job_id="job-1", action="generate", prompt=prompt, mode="fast",
                        product="flux", images=images,
                        options={"model": model, "width": width, "height": height, **extra})


def png(size: tuple[int, int], colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def test_kontext_runs_pending_then_ready_with_a_downloadable_sample(
        bfl: FakeBfl, http: httpx.AsyncClient, clock: Clock) -> None:
    provider = adapter(bfl, http)
    upstream_id = await provider.submit(task(width=1376, height=768, seed=7))
    assert upstream_id.startswith(bfl.base_url) and "get_result?id=" in upstream_id
    model, body = bfl.submissions[0]
    assert model == "flux-kontext-pro"
    assert body == {"prompt": "a lighthouse at sunset over the sea", "aspect_ratio": "16:9",
                    "seed": 7}
    clock.advance(2.5)
    running = (await provider.poll_many([upstream_id]))[upstream_id]
    assert running.state is TaskState.RUNNING and running.progress == 50
    clock.advance(3.0)
    done = (await provider.poll_many([upstream_id]))[upstream_id]
    assert done.state is TaskState.SUCCESS and done.data == {"seed": 7}
    (file,) = done.files
    assert file.role == "image" and file.content_type == "image/png" and file.url
    sample = await http.get(file.url)
    assert sample.status_code == 200
    assert Image.open(io.BytesIO(sample.content)).size == (344, 192)  # 1376x768 at 1/4
    assert all(key == KEY for method, path, key in bfl.requests if path.startswith("/v1/"))


async def test_flux2_sends_width_height_and_input_images(bfl: FakeBfl, http: httpx.AsyncClient,
                                                        clock: Clock) -> None:
    provider = adapter(bfl, http)
    images = (png((64, 96), "red"), png((64, 96), "blue"))
    upstream_id = await provider.submit(task("paint it as a watercolour forest",
                                             model="flux-2-pro", width=1024, height=1536,
                                             images=images, output_format="jpeg"))
    model, body = bfl.submissions[0]
    assert model == "flux-2-pro"
    assert body["width"] == 1024 and body["height"] == 1536 and body["output_format"] == "jpeg"
    stored = bfl.tasks[upstream_id.rsplit("=", 1)[1]]
    assert len(stored.inputs) == 2 and stored.inputs[1].getpixel((0, 0)) == (0, 0, 255)
    clock.advance(6)
    (file,) = (await provider.poll_many([upstream_id]))[upstream_id].files
    assert file.content_type == "image/jpeg"
    picture = Image.open(io.BytesIO((await http.get(file.url or "")).content))
    assert picture.format == "JPEG" and picture.size == (256, 384)


async def test_flux1_sizes_are_brought_within_the_endpoints_bounds(
        bfl: FakeBfl, http: httpx.AsyncClient) -> None:
    provider = adapter(bfl, http)
    await provider.submit(task(model="flux1-dev", width=1792, height=1024))
    await provider.submit(task(model="flux1-pro", width=1024, height=1024))
    (dev_model, dev), (pro_model, pro) = bfl.submissions
    assert (dev_model, dev["width"], dev["height"]) == ("flux-dev", 1440, 832)
    assert (pro_model, pro["width"], pro["height"]) == ("flux-pro-1.1", 1024, 1024)


@pytest.mark.parametrize(("prompt", "switch", "message"), [
    ("a forbiddenword on the beach", None, "[Request Moderated]"),
    ("contraband in a box", None, "[Content Moderated]"),
    ("a quiet harbour", "fail_tasks", "[Upstream error]"),
])
async def test_moderation_and_errors_fail_the_job_with_the_reason(
        bfl: FakeBfl, http: httpx.AsyncClient, clock: Clock, prompt: str, switch: str | None,
        message: str) -> None:
    if switch:
        setattr(bfl, switch, True)
    provider = adapter(bfl, http)
    upstream_id = await provider.submit(task(prompt))
    clock.advance(6)
    update = (await provider.poll_many([upstream_id]))[upstream_id]
    assert update.state is TaskState.FAILED
    assert update.message.startswith(message) and update.kind is FailureKind.JOB
    assert not update.files


async def test_a_task_the_upstream_no_longer_knows_is_left_out(
        bfl: FakeBfl, http: httpx.AsyncClient) -> None:
    provider = adapter(bfl, http)
    known = await provider.submit(task())
    bfl.lose_tasks = True
    assert await provider.poll_many([known]) == {}


@pytest.mark.parametrize(("failure", "kind"), [
    (402, FailureKind.AUTH), (429, FailureKind.QUEUE_FULL), (500, FailureKind.UNAVAILABLE),
    (503, FailureKind.UNAVAILABLE), ("close", FailureKind.UNAVAILABLE),
])
async def test_submit_refusals_are_classified(bfl: FakeBfl, http: httpx.AsyncClient,
                                              failure: int | str, kind: FailureKind) -> None:
    bfl.fail_next.append(failure)
    with pytest.raises(ProviderError) as caught:
        await adapter(bfl, http).submit(task())
    assert caught.value.kind is kind


async def test_a_wrong_key_is_the_accounts_fault_and_never_shown(
        bfl: FakeBfl, http: httpx.AsyncClient) -> None:
    provider = adapter(bfl, http, key="bfl-wrong-secret")
    with pytest.raises(ProviderError) as caught:
        await provider.submit(task())
    assert caught.value.kind is FailureKind.AUTH
    assert "bfl-wrong-secret" not in str(caught.value)
    with pytest.raises(ProviderError) as probed:
        await provider.probe()
    assert probed.value.kind is FailureKind.AUTH
    await adapter(bfl, http).probe()  # the right key passes


async def test_an_invalid_body_is_the_jobs_fault_with_the_field(
        bfl: FakeBfl, http: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await adapter(bfl, http).submit(task(safety_tolerance=9))
    assert caught.value.kind is FailureKind.JOB
    assert "safety_tolerance" in str(caught.value)


async def test_the_key_never_travels_to_a_polling_url_on_another_host(
        bfl: FakeBfl, http: httpx.AsyncClient) -> None:
    provider = BflProvider("https://api.bfl.ai", api_key=KEY, http=http)
    foreign = "https://evil.example/v1/get_result?id=1"
    assert await provider.poll_many([foreign]) == {}
    assert not bfl.requests


async def test_an_expired_sample_url_is_refused(bfl: FakeBfl, http: httpx.AsyncClient,
                                               clock: Clock) -> None:
    provider = adapter(bfl, http)
    upstream_id = await provider.submit(task())
    clock.advance(6)
    (file,) = (await provider.poll_many([upstream_id]))[upstream_id].files
    clock.advance(bfl.sample_ttl + 1)
    assert (await http.get(file.url or "")).status_code == 403
