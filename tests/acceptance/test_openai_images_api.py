"""The OpenAI images API through the official ``openai`` SDK, unchanged but for its base
URL, over a real socket: images.generate and images.edit on the built-in renderer (the
size asked for, url and b64_json), the charge per image, OpenAI's error format for bad
input and for a failed job (refunded), a 504 with the job_id while the job goes on, and the
same routes on an OpenAI account against the fake OpenAI Images API."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from openai.types import Image as SdkImage
from openai.types import ImagesResponse
from PIL import Image

from gengate.config import Settings
from gengate.jobs import JobStatus
from gengate.testing import Gateway, serve_gateway
from gengate.testing.openai_images import FakeOpenAIImages


def _settings(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update={"local_scale": 0.25, "local_fail_marker": "FAILME",
                                       "local_hang_marker": "HANGME",
                                       "upstream_poll_interval": 0.02, **update})


_OPEN: list[openai.AsyncOpenAI] = []


@pytest.fixture(autouse=True)
async def _close_sdks() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().close()


def sdk(gw: Gateway, key: str, **kwargs: Any) -> openai.AsyncOpenAI:
    """The official SDK pointed at gengate (closed after the test)."""
    client = openai.AsyncOpenAI(base_url=f"{gw.base_url}/v1", api_key=key, **kwargs)
    _OPEN.append(client)
    return client


def png(size: tuple[int, int], colour: str | tuple[int, ...], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def items(answer: ImagesResponse) -> list[SdkImage]:
    assert answer.data is not None
    return answer.data


def picture(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


async def balance(gw: Gateway, key: str) -> tuple[float, float]:
    info = (await gw.client(key).get("/midjourney/v1/info")).json()["data"]
    return info["balance"], info["freeze_balance"]


async def test_images_generate_and_edit_through_the_sdk(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=50)
        client = sdk(gw, key)
        made = await client.images.generate(model="gpt-image-1", prompt="a red fox in snow",
                                            size="1536x1024", n=2, quality="low")
        assert len(items(made)) == 2 and made.size == "1536x1024" and made.quality == "low"
        first = picture(base64.b64decode(items(made)[0].b64_json or ""))
        assert first.size == (384, 256) and first.format == "PNG"  # a quarter of the size
        assert await balance(gw, key) == (50 - 8, 0)  # 4 per image
        by_url = await client.images.generate(model="dall-e-3", prompt="a lighthouse",
                                              size="1024x1792")
        assert items(by_url)[0].revised_prompt == "a lighthouse"
        async with httpx.AsyncClient() as http:
            fetched = await http.get(items(by_url)[0].url or "")
        assert picture(fetched.content).size == (256, 448)
        jpeg = await client.images.generate(model="gpt-image-1", prompt="a boat",
                                            output_format="jpeg", response_format="url")
        assert jpeg.output_format == "jpeg" and (items(jpeg)[0].url or "").endswith(".jpg")
        edited = await client.images.edit(
            model="gpt-image-1", prompt="make it night",
            image=("photo.png", png((300, 200), "orange"), "image/png"),
            mask=("mask.png", png((300, 200), (0, 0, 0, 0), "RGBA"), "image/png"))
        # size auto follows the landscape input: 1536x1024
        assert picture(base64.b64decode(items(edited)[0].b64_json or "")).size == (384, 256)
        several = await client.images.edit(
            model="gpt-image-1.5", prompt="a collage", size="1024x1024",
            image=[("a.png", png((64, 64), "red"), "image/png"),
                   ("b.png", png((64, 64), "blue"), "image/png")])
        assert len(items(several)) == 1
        assert await balance(gw, key) == (50 - 8 - 4 - 4 - 4 - 4, 0)


async def test_bad_input_and_failures_in_openai_error_format(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=10)
        client = sdk(gw, key, max_retries=0)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.images.generate(model="dall-e-3", prompt="two", n=2)
        assert bad.value.body["param"] == "n"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError):
            await client.images.generate(model="dall-e-2", prompt="x", size="1536x1024")
        with pytest.raises(openai.AuthenticationError) as denied:
            await sdk(gw, "sk-wrong", max_retries=0).images.generate(prompt="x")
        assert denied.value.body["code"] == "invalid_api_key"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as missing:
            await client.images.edit(prompt="no image", image=[])
        assert "image" in missing.value.message
        with pytest.raises(openai.InternalServerError) as failed:
            await client.images.generate(model="gpt-image-1", prompt="FAILME a cat")
        assert failed.value.body["job_id"]  # type: ignore[index]
        assert await balance(gw, key) == (10, 0)  # refunded


async def test_a_504_names_the_job_and_tells_the_sdk_whether_to_retry(
        settings: Settings) -> None:
    async with serve_gateway(_settings(settings, sync_timeout=0.2)) as gw:
        user_id, key = await gw.create_user(balance=10)
        raw = gw.client(key)
        slow = await raw.post("/v1/images/generations", json={
            "model": "gpt-image-1-mini", "prompt": "HANGME a clock"},
            headers={"Authorization": f"Bearer {key}"})
        assert slow.status_code == 504
        error = slow.json()["error"]
        assert error["code"] == "timeout" and error["job_id"]
        assert slow.headers["x-should-retry"] == "false"
        keyed = await raw.post("/v1/images/generations", json={
            "model": "gpt-image-1-mini", "prompt": "HANGME a bell"},
            headers={"Idempotency-Key": "bell-1"})
        assert keyed.status_code == 504 and keyed.headers["x-should-retry"] == "true"
        # the SDK retries a 504 with x-should-retry: true, with the same key: one job
        client = sdk(gw, key, max_retries=2)
        with pytest.raises(openai.APIStatusError) as timed_out:
            await client.images.generate(model="gpt-image-1-mini", prompt="HANGME a bell",
                                         extra_headers={"Idempotency-Key": "bell-1"})
        assert timed_out.value.status_code == 504
        assert timed_out.value.body["job_id"] == keyed.json()["error"]["job_id"]  # type: ignore[index]
        job_id = error["job_id"]
        fetched = (await raw.get("/v1/images/fetch", params={"jobId": job_id})).json()
        assert fetched["status"] == "ON_QUEUE" and fetched["data"] is None
        assert await balance(gw, key) == (8, 2)  # two jobs frozen, none charged
        job = await gw.runtime.jobs.fetch(user_id, job_id)
        assert job.status is JobStatus.ON_QUEUE


async def test_the_images_api_on_an_openai_account(settings: Settings) -> None:
    front = _settings(settings, local_account=False)
    async with FakeOpenAIImages(keys=("sk-upstream",)) as upstream, \
            serve_gateway(front) as gw:
        response = await gw.http.post("/admin/accounts", json={
            "name": "openai", "provider": "openai", "baseUrl": upstream.base_url,
            "apiKey": "sk-upstream", "products": ["openai_images"]},
            headers={"Authorization": f"Bearer {gw.admin_key}"})
        assert response.status_code == 200, response.text
        _, key = await gw.create_user(balance=20)
        client = sdk(gw, key)
        made = await client.images.generate(model="gpt-image-1", prompt="a pier at noon",
                                            size="1024x1536", n=2, background="opaque")
        assert [picture(base64.b64decode(d.b64_json or "")).size for d in items(made)] == [
            (256, 384), (256, 384)]
        sent = upstream.requests[-1].fields
        assert sent["size"] == "1024x1536" and sent["n"] == 2 and sent["background"] == "opaque"
        edited = await client.images.edit(
            model="dall-e-2", prompt="add a moon", size="512x512", response_format="url",
            image=("in.png", png((64, 64), "teal"), "image/png"))
        assert (items(edited)[0].url or "").startswith(gw.base_url)
        assert upstream.requests[-1].path == "/v1/images/edits"
        with pytest.raises(openai.BadRequestError) as refused:
            await client.images.generate(model="gpt-image-1", prompt="a forbiddenword")
        assert refused.value.body["code"] == "moderation_blocked"  # type: ignore[index]
        assert await balance(gw, key) == (20 - 8 - 2, 0)
