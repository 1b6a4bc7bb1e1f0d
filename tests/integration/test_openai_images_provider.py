"""The OpenAI Images adapter against the fake OpenAI Images API on a real socket.

The fake is checked against OpenAI's own Python client first, so that the adapter is tested
against a server that client accepts; then each test drives :class:`OpenAIImagesProvider`
the way the worker does.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from PIL import Image

from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)
from gengate.providers.openai_images import OpenAIImagesProvider
from gengate.testing.openai_images import CLOSE, FakeOpenAIImages

KEY = "sk-test-images"


@pytest.fixture
async def up() -> AsyncIterator[FakeOpenAIImages]:
    async with FakeOpenAIImages(keys=(KEY,), scale=0.125) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def adapter(up: FakeOpenAIImages, http: httpx.AsyncClient, key: str = KEY
            ) -> OpenAIImagesProvider:
    return OpenAIImagesProvider(up.base_url, api_key=key, http=http)


def task(prompt: str = "a red fox in the snow", *, model: str = "gpt-image-1",
         width: int = 1024, height: int = 1024, images: tuple[bytes, ...] = ()) -> ProviderTask:
    return ProviderTask(job_id="job-1", action="generations", prompt=prompt, mode="fast",
                        product="gpt_image", images=images,
                        options={"model": model, "width": width, "height": height})


def png(size: tuple[int, int], colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def finish(provider: OpenAIImagesProvider, upstream_id: str) -> ProviderUpdate:
    """Poll like the worker until the task ends (bounded)."""
    async with asyncio.timeout(30):
        while True:
            update = (await provider.poll_many([upstream_id]))[upstream_id]
            if update.state is not TaskState.RUNNING:
                return update
            await asyncio.sleep(0.01)


async def test_the_fake_speaks_what_openais_client_expects(up: FakeOpenAIImages) -> None:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=f"{up.base_url}/v1",
                                  max_retries=0) as client:
        made = await client.images.generate(model="gpt-image-1", prompt="a red fox",
                                            size="1536x1024")
        assert made.size == "1536x1024" and made.data and made.data[0].b64_json
        edited = await client.images.edit(
            model="gpt-image-1", prompt="make it autumn",
            image=[("a.png", png((32, 32), "red"), "image/png"),
                   ("b.png", png((32, 32), "blue"), "image/png")])
        assert edited.data and edited.data[0].b64_json
        with pytest.raises(openai.BadRequestError) as refused:
            await client.images.generate(model="gpt-image-1", prompt="a forbiddenword")
        assert refused.value.code == "moderation_blocked"
    assert up.requests[1].files == {"image[]": [len(png((32, 32), c)) for c in ("red", "blue")]}


async def test_generation_answers_a_real_image_of_the_nearest_size(
        up: FakeOpenAIImages, http: httpx.AsyncClient) -> None:
    provider = adapter(up, http)
    update = await finish(provider, await provider.submit(task(width=1344, height=768)))
    assert update.state is TaskState.SUCCESS
    (file,) = update.files
    assert file.data is not None and file.content_type == "image/png"
    assert Image.open(io.BytesIO(file.data)).size == (192, 128)  # 1536x1024 at 1/8
    sent = up.requests[0]
    assert sent.path == "/v1/images/generations"
    assert sent.fields == {"model": "gpt-image-1", "prompt": "a red fox in the snow", "n": 1,
                           "size": "1536x1024"}


async def test_gpt_image_2_gets_the_jobs_own_size(up: FakeOpenAIImages,
                                                  http: httpx.AsyncClient) -> None:
    provider = adapter(up, http)
    update = await finish(provider, await provider.submit(
        task(model="gpt-image-2-plus", width=2048, height=1152)))
    (file,) = update.files
    assert Image.open(io.BytesIO(file.data or b"")).size == (256, 144)
    assert up.requests[0].fields["model"] == "gpt-image-2"


async def test_reference_images_go_to_edits_as_files(up: FakeOpenAIImages,
                                                     http: httpx.AsyncClient) -> None:
    provider = adapter(up, http)
    images = (png((48, 48), "green"), png((48, 48), "yellow"), png((48, 48), "white"))
    update = await finish(provider, await provider.submit(task("a garden", images=images)))
    assert update.state is TaskState.SUCCESS
    sent = up.requests[0]
    assert sent.path == "/v1/images/edits"
    assert sent.files == {"image[]": [len(i) for i in images]}
    assert sent.fields["prompt"] == "a garden" and sent.fields["model"] == "gpt-image-1"


async def test_a_moderated_prompt_fails_the_job_with_the_reason(
        up: FakeOpenAIImages, http: httpx.AsyncClient) -> None:
    provider = adapter(up, http)
    update = await finish(provider, await provider.submit(task("a forbiddenword")))
    assert update.state is TaskState.FAILED
    assert update.message.startswith("[Content Moderated]")


@pytest.mark.parametrize(("failure", "kind"), [
    (429, FailureKind.RATE_LIMITED), (500, FailureKind.UNAVAILABLE),
    (CLOSE, FailureKind.UNAVAILABLE),
])
async def test_upstream_failures_are_the_accounts(up: FakeOpenAIImages, http: httpx.AsyncClient,
                                                  failure: int | str, kind: FailureKind) -> None:
    up.plan.append(failure)
    provider = adapter(up, http)
    update = await finish(provider, await provider.submit(task()))
    assert update.state is TaskState.FAILED and update.kind is kind
    assert update.kind.account_level  # the job goes to another account


async def test_a_wrong_key_is_the_accounts_fault_and_never_shown(
        up: FakeOpenAIImages, http: httpx.AsyncClient) -> None:
    provider = adapter(up, http, key="sk-wrong-secret-value")
    update = await finish(provider, await provider.submit(task()))
    assert update.state is TaskState.FAILED and update.kind is FailureKind.AUTH
    assert "sk-wrong-secret-value" not in update.message
    with pytest.raises(ProviderError) as probed:
        await provider.probe()
    assert probed.value.kind is FailureKind.AUTH
    await adapter(up, http).probe()  # the right key passes


async def test_unknown_and_cancelled_tasks_are_left_out(up: FakeOpenAIImages,
                                                        http: httpx.AsyncClient) -> None:
    up.plan.append("hang")
    provider = adapter(up, http)
    upstream_id = await provider.submit(task())
    assert (await provider.poll_many([upstream_id]))[upstream_id].state is TaskState.RUNNING
    await provider.cancel(upstream_id)
    assert await provider.poll_many([upstream_id, "oai-unknown"]) == {}


async def test_answers_are_base64_images(up: FakeOpenAIImages, http: httpx.AsyncClient) -> None:
    provider = adapter(up, http)
    update = await finish(provider, await provider.submit(task("a blue lake")))
    raw = base64.b64encode(update.files[0].data or b"")
    assert raw and Image.open(io.BytesIO(base64.b64decode(raw))).mode == "RGB"
