"""Webhooks over real sockets: a real receiver that fails, hangs and drops connections."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from gengate.config import Settings
from gengate.testing import CLOSE, HANG, Gateway, WebhookReceiver, serve_gateway

V1 = "/midjourney/v1"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    # the receiver answers at once; a loaded machine may still take seconds to get an
    # answer through, and an attempt that timed out would be one attempt more than planned
    return settings.model_copy(update={
        "webhook_allow": "127.0.0.1", "webhook_backoff": 0.05, "webhook_backoff_factor": 1.0,
        "webhook_timeout": 10.0})


async def _job(gw: Gateway, receiver: WebhookReceiver, prompt: str = "a cat",
               **extra: object) -> tuple[httpx.AsyncClient, str, dict[str, Any]]:
    _, key = await gw.create_user(balance=100)
    client = gw.client(key)
    response = await client.post(f"{V1}/imagine",
                                 json={"prompt": prompt, "hookUrl": receiver.url, **extra})
    assert response.status_code == 200, response.text
    job_id = response.json()["data"]["jobId"]
    return client, job_id, await gw.wait(client, job_id)


async def _deliveries(client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    response = await client.get("/webhooks/deliveries", params={"jobId": job_id})
    return cast("list[dict[str, Any]]", response.json()["data"])


async def test_delivered_signed_and_identical_to_fetch(hook_settings: Settings) -> None:
    async with WebhookReceiver() as receiver, serve_gateway(hook_settings) as gw:
        client, job_id, fetched = await _job(gw, receiver)
        request = await receiver.next()
        assert request.method == "POST" and request.path == "/hook"
        assert request.headers["content-type"] == "application/json"
        secret = (await client.get("/webhooks/secret")).json()["data"]["secret"]
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload == fetched
        assert payload["data"]["hookUrl"] == receiver.url
        assert request.headers["webhook-id"].startswith("msg_")
        logged = await _deliveries(client, job_id)
        assert logged[0]["status"] == "delivered"
        assert [a["statusCode"] for a in logged[0]["attempts"]] == [200]


async def test_retries_keep_body_and_id_until_200(hook_settings: Settings) -> None:
    async with WebhookReceiver([500, CLOSE]) as receiver, serve_gateway(hook_settings) as gw:
        client, job_id, _ = await _job(gw, receiver)
        got = [await receiver.next() for _ in range(3)]
        assert len({r.body for r in got}) == 1
        assert len({r.headers["webhook-id"] for r in got}) == 1
        secret = (await client.get("/webhooks/secret")).json()["data"]["secret"]
        for request in got:
            Webhook(secret).verify(request.body, request.headers)
        logged = await _await_status(client, job_id, "delivered")
        codes = [a["statusCode"] for a in logged["attempts"]]
        assert codes == [500, None, 200]
        assert logged["attempts"][1]["error"]


async def _await_status(client: httpx.AsyncClient, job_id: str, status: str) -> dict[str, Any]:
    """The dispatcher logs the attempt right after the receiver answers; wait for that row."""
    async with asyncio.timeout(10):
        while True:
            logged = await _deliveries(client, job_id)
            if logged and logged[0]["status"] == status:
                return logged[0]
            await asyncio.sleep(0.02)


async def test_gives_up_after_three_then_redelivers(hook_settings: Settings) -> None:
    async with WebhookReceiver([204, 503, (302, {"Location": "http://10.0.0.1/x"})]) as \
            receiver, serve_gateway(hook_settings) as gw:
        client, job_id, fetched = await _job(gw, receiver)
        for _ in range(3):
            await receiver.next()
        failed = await _await_status(client, job_id, "failed")
        assert [a["statusCode"] for a in failed["attempts"]] == [204, 503, 302]
        assert fetched["status"] == "SUCCESS"
        again = await client.post("/webhooks/redeliver", json={"deliveryId": failed["deliveryId"]})
        assert again.status_code == 200
        request = await receiver.next()
        assert request.headers["webhook-id"] == failed["deliveryId"]
        done = await _await_status(client, job_id, "delivered")
        assert len(done["attempts"]) == 4
        assert receiver.received.empty()
        missing = await client.post("/webhooks/redeliver", json={"deliveryId": "msg_nope"})
        assert missing.status_code == 404


async def test_a_hanging_receiver_times_out(hook_settings: Settings) -> None:
    hanging = hook_settings.model_copy(update={"webhook_timeout": 2.0})
    async with WebhookReceiver([HANG]) as receiver, serve_gateway(hanging) as gw:
        client, job_id, _ = await _job(gw, receiver)
        await receiver.next()
        await receiver.next()
        done = await _await_status(client, job_id, "delivered")
        assert "timed out" in done["attempts"][0]["error"]
        assert done["attempts"][1]["statusCode"] == 200


async def test_pending_deliveries_survive_a_restart(hook_settings: Settings) -> None:
    async with WebhookReceiver() as receiver:
        async with serve_gateway(hook_settings, with_dispatcher=False) as gw:
            client, job_id, _ = await _job(gw, receiver)
            logged = await _deliveries(client, job_id)
            assert logged[0]["status"] == "pending" and logged[0]["attempts"] == []
        async with serve_gateway(hook_settings):
            request = await receiver.next()
            assert request.headers["webhook-id"] == logged[0]["deliveryId"]


async def test_progress_events_when_asked(hook_settings: Settings) -> None:
    settings = hook_settings.model_copy(update={"local_delay": 0.3, "local_steps": 3})
    async with WebhookReceiver() as receiver, serve_gateway(settings) as gw:
        client, job_id, _ = await _job(gw, receiver, hookProgress=True)
        bodies = []
        while True:
            body = orjson.loads((await receiver.next()).body)
            bodies.append(body)
            if body["status"] == "SUCCESS":
                break
        assert all(b["status"] == "ON_QUEUE" for b in bodies[:-1]) and len(bodies) >= 2
        progress = [int(b["data"]["progress"]) for b in bodies]
        assert progress == sorted(progress)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x",
    "http://192.168.0.10/x", "http://172.16.5.4/x", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/x", "http://224.0.0.1/x", "http://0.0.0.0/x", "http://[fc00::1]/x",
    "http://100.64.0.1/x", "http://[::ffff:127.0.0.1]/x", "ftp://example.com/x",
    "http://user:pw@example.com/x", "not a url", "http://example.com/" + "a" * 2100,
])
async def test_unsafe_hook_urls_are_refused_at_submit(settings: Settings, url: str) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        response = await client.post(f"{V1}/imagine", json={"prompt": "cat", "hookUrl": url})
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith("hookUrl:")
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["balance"] == 10 and info["freeze_balance"] == 0


async def test_secret_rotation_and_metrics(hook_settings: Settings) -> None:
    async with WebhookReceiver() as receiver, serve_gateway(hook_settings) as gw:
        client, job_id, _ = await _job(gw, receiver)
        first = (await client.get("/webhooks/secret")).json()["data"]["secret"]
        request = await receiver.next()
        Webhook(first).verify(request.body, request.headers)
        rotated = (await client.post("/webhooks/secret/rotate")).json()["data"]["secret"]
        assert rotated != first and rotated.startswith("whsec_")
        assert (await client.get("/webhooks/secret")).json()["data"]["secret"] == rotated
        await _await_status(client, job_id, "delivered")
        metrics = (await gw.http.get("/metrics")).text
        assert 'gengate_webhook_deliveries{outcome="delivered"} 1.0' in metrics
        assert (await gw.http.get("/webhooks/secret")).status_code == 401


async def test_delivery_log_retention(hook_settings: Settings) -> None:
    async with WebhookReceiver([500]) as receiver, serve_gateway(hook_settings) as gw:
        client, job_id, _ = await _job(gw, receiver)
        done = await _await_status(client, job_id, "delivered")
        store = gw.runtime.store
        assert await store.purge_deliveries(done["finishedAt"] - 1) == 0
        assert await store.purge_deliveries(done["finishedAt"] + 1) == 1
        assert await _deliveries(client, job_id) == []


async def test_process_counters(hook_settings: Settings) -> None:
    async with WebhookReceiver([500]) as receiver, serve_gateway(hook_settings) as gw:
        client, job_id, _ = await _job(gw, receiver)
        await _await_status(client, job_id, "delivered")
        metrics = (await gw.http.get("/metrics")).text
        assert 'gengate_webhook_attempts_total{outcome="retried"} 1.0' in metrics
        assert 'gengate_webhook_attempts_total{outcome="delivered"} 1.0' in metrics
        assert 'gengate_jobs_finished_total{status="SUCCESS"} 1.0' in metrics
