"""The Gemini image adapters driven the way the worker drives them: Google's Gemini API
against the fake built from Google's documentation, and TTAPI's synchronous route against
a real TTAPI-compatible upstream (another gengate on a real socket)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from gengate.accounts import FailureKind
from gengate.config import Settings
from gengate.products.gemini_image.options import GeminiImageOptions
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate, TaskState
from gengate.providers.gemini import GoogleGeminiProvider
from gengate.providers.inline import InlineProvider
from gengate.providers.ttapi_gemini import TtapiGeminiProvider
from gengate.testing import Gateway, serve_gateway
from gengate.testing.gemini import FakeGemini


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def task(prompt: str, images: tuple[bytes, ...] = (), **options: object) -> ProviderTask:
    base = GeminiImageOptions().to_json()
    return ProviderTask(job_id="j", action="generate", prompt=prompt, mode="fast",
                        product="gemini_image", options={**base, **options}, images=images)


def png(size: tuple[int, int], colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def run(provider: InlineProvider, job: ProviderTask) -> ProviderUpdate:
    update = await provider.outcome(await provider.submit(job))
    assert update is not None
    return update


def size_of(data: bytes | None) -> tuple[int, int]:
    assert data is not None
    return Image.open(io.BytesIO(data)).size


async def test_google_makes_the_picture_asked_for(http: httpx.AsyncClient) -> None:
    async with FakeGemini(keys=("AIza-key",)) as google:
        provider = GoogleGeminiProvider(google.base_url, api_key="AIza-key", http=http)
        update = await run(provider, task(
            "a lighthouse", (png((40, 30), "navy"),), model="gemini-3-pro-image-preview",
            aspect_ratio="16:9", image_size="2K", google_search=True, thinking_level="High"))
        assert update.state is TaskState.SUCCESS
        (file,) = update.files
        assert size_of(file.data) == (688, 384)  # 2752x1536 at the fake's quarter scale
        sent = google.requests[-1]
        assert (sent.model, sent.images) == ("gemini-3-pro-image-preview", 1)
        assert sent.generation_config["imageConfig"] == {"aspectRatio": "16:9",
                                                         "imageSize": "2K"}
        assert sent.generation_config["thinkingConfig"] == {"thinkingLevel": "high"}
        assert sent.tools == [{"google_search": {}}] and sent.key == "AIza-key"
        # TTAPI's preview name is served by the released model, 1K only
        old = await run(provider, task("a fox", model="gemini-2.5-flash-image-preview"))
        assert old.state is TaskState.SUCCESS and size_of(old.files[0].data) == (256, 256)
        assert google.requests[-1].model == "gemini-2.5-flash-image"
        assert "imageSize" not in google.requests[-1].generation_config["imageConfig"]
        await provider.probe()


async def test_google_refusals_and_account_failures(http: httpx.AsyncClient) -> None:
    async with FakeGemini(keys=("AIza-key",)) as google:
        provider = GoogleGeminiProvider(google.base_url, api_key="AIza-key", http=http)
        blocked = await run(provider, task("a forbiddenword"))
        assert blocked.state is TaskState.FAILED
        assert blocked.message.startswith("[Content Moderated]") and "PROHIBITED" in (
            blocked.message)
        withheld = await run(provider, task("an unsafeword"))
        assert withheld.state is TaskState.FAILED and "IMAGE_SAFETY" in withheld.message
        google.plan = [429, 503]
        limited = await run(provider, task("a cat"))
        assert limited.kind is FailureKind.RATE_LIMITED
        down = await run(provider, task("a cat"))
        assert down.kind is FailureKind.UNAVAILABLE
        wrong = GoogleGeminiProvider(google.base_url, api_key="AIza-wrong", http=http)
        refused = await run(wrong, task("a cat"))
        assert refused.kind is FailureKind.AUTH and "AIza-wrong" not in refused.message
        with pytest.raises(ProviderError) as probe:
            await wrong.probe()
        assert probe.value.kind is FailureKind.AUTH
        with pytest.raises(ProviderError):
            await provider.submit(task("a cat", model="imagen-4"))


@pytest.fixture
async def upstream(settings: Settings) -> AsyncIterator[Gateway]:
    update = {"local_scale": 0.25, "local_fail_marker": "FAILME"}
    async with serve_gateway(settings.model_copy(update=update)) as gw:
        yield gw


async def test_ttapi_relays_the_synchronous_route(upstream: Gateway,
                                                  http: httpx.AsyncClient) -> None:
    _, key = await upstream.create_user(balance=50)
    provider = TtapiGeminiProvider(upstream.base_url, api_key=key, http=http)
    update = await run(provider, task("a harbour", (png((32, 32), "red"),),
                                      aspect_ratio="3:2", image_size="1K"))
    assert update.state is TaskState.SUCCESS
    (file,) = update.files
    assert file.url and file.url.startswith(upstream.base_url + "/cdn/")
    picture = Image.open(io.BytesIO((await http.get(file.url)).content))
    assert picture.size == (320, 208)  # 1280x832 at the upstream's quarter scale
    failed = await run(provider, task("FAILME a harbour"))
    assert failed.state is TaskState.FAILED and failed.message
    wrong = TtapiGeminiProvider(upstream.base_url, api_key="nope", http=http)
    refused = await run(wrong, task("a cat"))
    assert refused.kind is FailureKind.AUTH
    await provider.probe()
