"""The TTAPI relay adapter of Flux and GPT image against a real TTAPI-compatible upstream:
another gengate on a real socket, driven the way the worker drives an adapter."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from gengate.config import Settings
from gengate.products.flux.product import relay_request as flux_request
from gengate.products.gpt_image.product import relay_request as gpt_request
from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)
from gengate.providers.ttapi_relay import TtapiRelayProvider
from gengate.testing import Gateway, serve_gateway


@pytest.fixture
async def upstream(settings: Settings) -> AsyncIterator[Gateway]:
    update = {"local_scale": 0.25, "local_fail_marker": "FAILME"}
    async with serve_gateway(settings.model_copy(update=update)) as gw:
        yield gw


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def finish(provider: TtapiRelayProvider, upstream_id: str) -> ProviderUpdate:
    async with asyncio.timeout(30):
        while True:
            update = (await provider.poll_many([upstream_id]))[upstream_id]
            if update.state is not TaskState.RUNNING:
                return update
            await asyncio.sleep(0.02)


def flux_task(prompt: str, **options: object) -> ProviderTask:
    return ProviderTask(job_id="j", action="generate", prompt=prompt, mode="fast",
                        product="flux", options={"model": "flux1-dev", **options})


async def test_flux_relays_and_answers_the_upstreams_picture(upstream: Gateway,
                                                            http: httpx.AsyncClient) -> None:
    _, key = await upstream.create_user(balance=50)
    provider = TtapiRelayProvider(upstream.base_url, api_key=key, http=http,
                                  build=flux_request, fetch_path="/flux/fetch")
    update = await finish(provider, await provider.submit(
        flux_task("a harbour at dawn", aspect_ratio="21:9")))
    assert update.state is TaskState.SUCCESS
    (file,) = update.files
    assert file.url and file.url.startswith(upstream.base_url + "/cdn/")
    picture = Image.open(io.BytesIO((await http.get(file.url)).content))
    assert picture.size == (392, 168)  # 1568x672 at the upstream's quarter scale
    failed = await finish(provider, await provider.submit(flux_task("FAILME a harbour")))
    assert failed.state is TaskState.FAILED and failed.message.startswith("[Internal error]")
    assert await provider.poll_many(["no-such-job"]) == {}
    await provider.probe()


async def test_gpt_image_relays(upstream: Gateway, http: httpx.AsyncClient) -> None:
    _, key = await upstream.create_user(balance=50)
    provider = TtapiRelayProvider(upstream.base_url, api_key=key, http=http,
                                  build=gpt_request, fetch_path="/openai/gpt/fetch")
    task = ProviderTask(job_id="j", action="generations", prompt="draw a fox", mode="fast",
                        product="gpt_image", options={"model": "gpt-image-2-plus",
                                                      "width": 816, "height": 816,
                                                      "size": "100x100"})
    update = await finish(provider, await provider.submit(task))
    assert update.state is TaskState.SUCCESS
    picture = Image.open(io.BytesIO((await http.get(update.files[0].url or "")).content))
    assert picture.size == (204, 204)  # the corrected 816x816, a quarter


@pytest.mark.parametrize(("setup", "kind"), [
    ("wrong-key", FailureKind.AUTH), ("broke", FailureKind.AUTH),
    ("bad-field", FailureKind.JOB),
])
async def test_refusals_are_classified(upstream: Gateway, http: httpx.AsyncClient, setup: str,
                                       kind: FailureKind) -> None:
    _, key = await upstream.create_user(balance=0 if setup == "broke" else 50)
    provider = TtapiRelayProvider(upstream.base_url,
                                  api_key="tt-wrong-secret" if setup == "wrong-key" else key,
                                  http=http, build=flux_request, fetch_path="/flux/fetch")
    task = flux_task("a cat", size="999x999") if setup == "bad-field" else flux_task("a cat")
    with pytest.raises(ProviderError) as caught:
        await provider.submit(task)
    assert caught.value.kind is kind
    assert "tt-wrong-secret" not in str(caught.value)
    if setup == "bad-field":
        assert "size" in str(caught.value)
