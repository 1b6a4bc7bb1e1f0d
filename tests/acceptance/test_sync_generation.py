"""Synchronous generation (Gemini image) through the whole engine over real sockets: the
request is a job, held open until the job ends; past GENGATE_SYNC_TIMEOUT a 504 carries
the jobId while the job goes on; a retry with the same Idempotency-Key re-attaches to it;
a client that goes away loses nothing; on PostgreSQL the node holding the request is woken
by another node's worker through NOTIFY."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from gengate.config import Settings
from gengate.jobs import JobStatus
from gengate.testing import Gateway, WebhookReceiver, serve_gateway
from gengate.testing.gemini import FakeGemini
from tests.conftest import fresh_postgres

GENERATE = "/gemini/image/generate"


def _settings(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update={"local_scale": 0.25, "local_fail_marker": "FAILME",
                                       "webhook_allow": "127.0.0.1",
                                       "upstream_poll_interval": 0.02, **update})


async def balance(client: httpx.AsyncClient) -> tuple[float, float]:
    info = (await client.get("/midjourney/v1/info")).json()["data"]
    return info["balance"], info["freeze_balance"]


async def size_of(client: httpx.AsyncClient, url: str) -> tuple[int, int]:
    response = await client.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content)).size


async def google_account(gw: Gateway, fake: FakeGemini) -> None:
    response = await gw.http.post("/admin/accounts", json={
        "name": "gemini", "provider": "google", "baseUrl": fake.base_url,
        "apiKey": "AIza-test"}, headers={"Authorization": f"Bearer {gw.admin_key}"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["products"] == ["gemini_image"]


def png(size: tuple[int, int], colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def test_gemini_image_answers_in_the_request(settings: Settings) -> None:
    async with WebhookReceiver() as hooks, serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        answer = await client.post(GENERATE, json={
            "prompt": "a lighthouse at dusk", "model": "gemini-3-pro-image-preview",
            "aspect_ratio": "16:9", "image_size": "2K", "hook_url": hooks.url,
            "refer_images": [base64.b64encode(png((64, 48), "navy")).decode()]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "SUCCESS" and body["message"] == "success"
        data = body["data"]
        assert set(data) == {"prompt", "refer_images", "image_url", "quota"}
        assert data["quota"] == 2 and isinstance(data["quota"], int | float)
        assert data["prompt"] == "a lighthouse at dusk" and data["refer_images"] == []
        # 2K at 16:9 is 2752 x 1536; the renderer here draws at a quarter of that
        assert await size_of(client, data["image_url"]) == (688, 384)
        assert await balance(client) == (8, 0)
        hook = await hooks.next()
        sent = hook.body.decode()
        assert body["jobId"] in sent and '"SUCCESS"' in sent
        fetched = (await client.get("/gemini/image/fetch",
                                    params={"jobId": body["jobId"]})).json()
        assert fetched["status"] == "SUCCESS" and fetched["data"]["image_url"] == data["image_url"]
        assert (fetched["data"]["width"], fetched["data"]["height"]) == (688, 384)


async def test_an_upstream_failure_is_refunded_and_answered_in_the_envelope(
        settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        failed = await client.post(GENERATE, json={"prompt": "FAILME a cat"})
        assert failed.status_code == 500
        body = failed.json()
        assert body["status"] == "FAILED" and body["message"]
        assert body["data"]["jobId"] == body["data"]["job_id"]
        assert await balance(client) == (10, 0)
        bad = await client.post(GENERATE, json={"prompt": "a cat", "aspect_ratio": "16:9",
                                                "model": "gemini-2.5-flash-image"})
        assert bad.status_code == 400 and bad.json()["message"].startswith("aspect_ratio:")
        bad = await client.post(GENERATE, json={"prompt": "a cat", "image_size": "2k"})
        assert bad.status_code == 400 and bad.json()["message"].startswith("image_size:")
        bad = await client.post(GENERATE, json={"prompt": "a cat", "refer_images": ["@@"]})
        assert bad.status_code == 400 and "refer_images[0]" in bad.json()["message"]
        assert await balance(client) == (10, 0)


async def test_sync_return_false_answers_the_job_id_at_once(settings: Settings) -> None:
    async with serve_gateway(_settings(settings)) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        answer = await client.post(GENERATE, json={"prompt": "a fox", "sync_return": "false",
                                                   "model": "gemini-2.5-flash-image"})
        assert answer.status_code == 200
        job_id = answer.json()["data"]["jobId"]
        ended = await gw.runtime.jobs.wait(1, job_id, 30.0)
        assert ended.status is JobStatus.SUCCESS
        fetched = (await client.get("/gemini/image/fetch", params={"jobId": job_id})).json()
        assert fetched["status"] == "SUCCESS" and fetched["data"]["quota"] == 2
        assert await size_of(client, fetched["data"]["image_url"]) == (256, 256)


async def test_a_504_carries_the_job_id_and_a_retry_with_the_key_reattaches(
        settings: Settings) -> None:
    front = _settings(settings, local_account=False, sync_timeout=1.0)
    async with FakeGemini() as google, WebhookReceiver() as hooks, \
            serve_gateway(front) as gw:
        await google_account(gw, google)
        google.gate = asyncio.Event()
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        request = {"prompt": "a slow harbour", "model": "gemini-3-pro-image-preview",
                   "aspect_ratio": "4:3", "hook_url": hooks.url}
        headers = {"Idempotency-Key": "harbour-1"}
        timed_out = await client.post(GENERATE, json=request, headers=headers)
        assert timed_out.status_code == 504
        body = timed_out.json()
        assert body["status"] == "FAILED" and body["message"].startswith("Timeout")
        job_id = body["data"]["jobId"]
        # the job goes on: fetchable, still frozen, not charged
        running = (await client.get("/gemini/image/fetch", params={"jobId": job_id})).json()
        assert running["status"] in ("PENDING_QUEUE", "ON_QUEUE")
        assert await balance(client) == (8, 2)
        # the client retries with the same key: it waits on the same job
        retry = asyncio.create_task(client.post(GENERATE, json=request, headers=headers,
                                                timeout=30.0))
        await google.arrived.wait()
        google.gate.set()
        answer = await retry
        assert answer.status_code == 200, answer.text
        assert answer.json()["jobId"] == job_id
        assert await size_of(client, answer.json()["data"]["image_url"]) == (288, 224)
        assert await balance(client) == (8, 0)  # charged once
        assert len(google.requests) == 1
        assert job_id in (await hooks.next()).body.decode()
        # a later retry answers the ended job at once, still without a second charge
        again = await client.post(GENERATE, json=request, headers=headers)
        assert again.status_code == 200 and again.json()["jobId"] == job_id
        assert await balance(client) == (8, 0)
        assert len(gw.runtime.jobs.ends) == 0
        ledger = (await gw.http.get(f"/admin/users/{user_id}/ledger", headers={
            "Authorization": f"Bearer {gw.admin_key}"})).json()["data"]
        assert [e["kind"] for e in ledger["entries"] if e["jobId"] == job_id].count(
            "settle") == 1


async def test_a_504_then_the_job_succeeds_and_is_charged_once(settings: Settings) -> None:
    front = _settings(settings, local_account=False, sync_timeout=0.2)
    async with FakeGemini() as google, serve_gateway(front) as gw:
        await google_account(gw, google)
        google.gate = asyncio.Event()
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        timed_out = await client.post(GENERATE, json={"prompt": "a tide"})
        assert timed_out.status_code == 504
        job_id = timed_out.json()["data"]["jobId"]
        google.gate.set()
        ended = await gw.runtime.jobs.wait(user_id, job_id, 30.0)
        assert ended.status is JobStatus.SUCCESS
        fetched = (await client.get("/gemini/image/fetch", params={"jobId": job_id})).json()
        assert fetched["status"] == "SUCCESS"
        assert await balance(client) == (8, 0)


async def test_a_client_that_goes_away_loses_nothing(settings: Settings) -> None:
    front = _settings(settings, local_account=False, sync_timeout=60)
    async with FakeGemini() as google, serve_gateway(front) as gw:
        await google_account(gw, google)
        google.gate = asyncio.Event()
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        held = asyncio.create_task(client.post(GENERATE, json={"prompt": "a quay"}))
        await google.arrived.wait()
        held.cancel()  # the client hangs up mid-wait
        with pytest.raises(asyncio.CancelledError):
            await held
        listed = (await client.get("/jobs/list", params={"product": "gemini_image"})).json()
        job_id = listed["data"][0]["jobId"] if isinstance(listed["data"], list) else (
            listed["data"]["items"][0]["jobId"])
        google.gate.set()
        ended = await gw.runtime.jobs.wait(user_id, job_id, 30.0)
        assert ended.status is JobStatus.SUCCESS
        assert await balance(client) == (8, 0)


@pytest.mark.postgres
async def test_on_postgres_another_nodes_worker_wakes_the_held_request(
        settings: Settings, tmp_path: Any) -> None:
    async with fresh_postgres(migrated=True) as url:
        api_only = _settings(settings, database_url=url, sync_timeout=60,
                             data_dir=tmp_path / "api")
        worker = _settings(settings, database_url=url, data_dir=tmp_path / "worker")
        async with serve_gateway(api_only, with_worker=False) as api, \
                serve_gateway(worker) as runner:
            _, key = await api.create_user(balance=10)
            client = api.client(key)
            answer = await client.post(GENERATE, json={"prompt": "a lantern",
                                                       "aspect_ratio": "9:16"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["image_url"].startswith(runner.base_url)
            assert await size_of(client, answer.json()["data"]["image_url"]) == (192, 336)
            assert len(api.runtime.jobs.ends) == 0
            assert api.runtime.worker is None
