"""Flux and GPT image over a real socket, on SQLite and PostgreSQL: the whole job life on the
built-in renderer (success with the picture's real size, upstream failure with its refund,
the deadline), the field variants of each path, and webhooks."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.testing import Gateway, WebhookReceiver, serve_gateway
from tests.conftest import fresh_postgres

FLUX_KEYS = {"mode", "jobId", "prompt", "quota", "size", "imageUrl", "hookUrl"}
GPT_KEYS = {"prompt", "referImages", "imageUrl", "quota", "finishTime", "hookUrl"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_settings(request: pytest.FixtureRequest, settings: Settings
                      ) -> AsyncIterator[Settings]:
    """The test's settings on each database: pictures at a quarter of their size, a fail
    and a hang marker for the renderer, webhooks to 127.0.0.1."""
    update: dict[str, Any] = {"local_scale": 0.25, "local_fail_marker": "FAILME",
                              "local_hang_marker": "HANGME", "webhook_allow": "127.0.0.1"}
    if request.param == "sqlite":
        yield settings.model_copy(update=update)
        return
    async with fresh_postgres(migrated=True) as url:
        yield settings.model_copy(update={**update, "database_url": url})


def png(size: tuple[int, int], colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def submitted(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SUCCESS" and body["message"] == "success"
    assert body["data"]["jobId"] == body["data"]["job_id"]
    return str(body["data"]["jobId"])


async def wait(client: httpx.AsyncClient, fetch: str, job_id: str,
               timeout: float = 30.0) -> dict[str, Any]:
    """Poll the product's fetch until the job ends, like TTAPI's sample code (bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(fetch, params={"jobId": job_id})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] in ("SUCCESS", "FAILED"):
                return body
            await asyncio.sleep(0.02)


async def picture(gw: Gateway, url: str) -> Image.Image:
    assert url.startswith(gw.base_url + "/cdn/")
    response = await gw.http.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


def wake(gw: Gateway) -> None:
    """The deadline passed on the manual clock: let the worker look now."""
    worker = gw.runtime.worker
    assert worker is not None
    worker.wake()


async def ledger(gw: Gateway, user_id: int) -> dict[str, Any]:
    response = await gw.http.get(f"/admin/users/{user_id}/ledger",
                                 headers={"Authorization": f"Bearer {gw.admin_key}"})
    return dict(response.json()["data"])


# ------------------------------------------------------------------------------- Flux


async def test_flux_generate_runs_end_to_end(db_settings: Settings) -> None:
    async with WebhookReceiver() as hooks, serve_gateway(db_settings) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await submitted(await client.post("/flux/generate", json={
            "prompt": "a lighthouse at sunset over the sea", "model": "flux1-dev",
            "aspect_ratio": "16:9", "hookUrl": hooks.url}))
        first = (await client.post("/flux/fetch", json={"jobId": job_id})).json()
        assert first["status"] in ("PENDING_QUEUE", "ON_QUEUE", "SUCCESS")
        body = await wait(client, "/flux/fetch", job_id)
        assert body["status"] == "SUCCESS" and body["message"] == "" and body["jobId"] == job_id
        data = body["data"]
        assert set(data) == FLUX_KEYS
        assert data["mode"] == "flux1-dev" and data["quota"] == "1"
        assert data["prompt"] == "a lighthouse at sunset over the sea"
        image = await picture(gw, data["imageUrl"])
        assert image.size == (344, 192)  # 1376x768 at the test's quarter scale
        assert data["size"] == "344x192"
        hook = await hooks.next()
        assert json.loads(hook.body) == body
        assert (await ledger(gw, user_id))["totals"] == {"topup": 10, "freeze": 1,
                                                         "settle": 1, "refund": 0, "overage": 0}


async def test_flux_upstream_failure_is_refunded(db_settings: Settings) -> None:
    async with serve_gateway(db_settings) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await submitted(await client.post(
            "/flux/generate", json={"prompt": "FAILME a fox", "mode": "flux-kontext-max"}))
        body = await wait(client, "/flux/fetch", job_id)
        assert body["status"] == "FAILED" and body["message"].startswith("[Internal error]")
        assert body["data"]["imageUrl"] is None
        totals = (await ledger(gw, user_id))["totals"]
        assert totals == {"topup": 10, "freeze": 4, "settle": 0, "refund": 4, "overage": 0}


async def test_flux_deadline_fails_and_refunds(db_settings: Settings) -> None:
    clock = ManualClock()
    async with serve_gateway(db_settings, clock=clock) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await submitted(await client.post(
            "/flux/generate", json={"prompt": "HANGME a fox", "mode": "flux1-pro"}))
        async with asyncio.timeout(10):
            while (await client.get("/flux/fetch", params={"jobId": job_id})
                   ).json()["status"] != "ON_QUEUE":
                await asyncio.sleep(0.02)
        clock.advance(301)
        wake(gw)
        body = await wait(client, "/flux/fetch", job_id)
        assert body["status"] == "FAILED" and body["message"] == "Job Timeout"
        totals = (await ledger(gw, user_id))["totals"]
        assert totals == {"topup": 10, "freeze": 2, "settle": 0, "refund": 2, "overage": 0}


async def test_flux_edits_bfl_format_and_every_fetch_transport(settings: Settings) -> None:
    async with serve_gateway(settings.model_copy(update={"local_scale": 0.25})) as gw:
        _, key = await gw.create_user(balance=50)
        client = gw.client(key)
        red, blue = png((300, 150), "red"), png((300, 150), "blue")
        edit_id = await submitted(await client.post(
            "/flux/edits", data={"prompt": "a meadow in spring", "model": "flux-2-pro"},
            files=[("image", ("a.png", red, "image/png")),
                   ("image", ("b.png", blue, "image/png"))]))
        bfl_id = await submitted(await client.post("/bfl/v1/flux-kontext-pro", json={
            "prompt": "turn it into a night scene", "aspect_ratio": "21:9",
            "input_image": base64.b64encode(red).decode(), "output_format": "jpeg",
            "seed": 42}))
        edit = await wait(client, "/flux/fetch", edit_id)
        kontext = await wait(client, "/flux/fetch", bfl_id)
        # an edit keeps its first image's 2:1 shape at about one megapixel
        assert edit["status"] == "SUCCESS" and edit["data"]["mode"] == "flux-2-pro"
        assert (await picture(gw, edit["data"]["imageUrl"])).size == (360, 184)
        assert kontext["data"]["mode"] == "flux-kontext-pro" and kontext["data"]["quota"] == "2"
        shot = await picture(gw, kontext["data"]["imageUrl"])
        assert shot.format == "JPEG" and shot.size == (392, 168)
        # jobId from the query, a JSON body, an url-encoded form and a multipart form
        answers = [
            await client.get("/flux/fetch", params={"job_id": edit_id}),
            await client.post("/flux/fetch", json={"jobId": edit_id}),
            await client.post("/flux/fetch", data={"jobId": edit_id}),
            await client.post("/flux/fetch", files={"jobId": (None, edit_id)}),
        ]
        assert all(a.status_code == 200 and a.json() == edit for a in answers)


# -------------------------------------------------------------------------- GPT image


async def test_gpt_image_runs_end_to_end(db_settings: Settings) -> None:
    async with WebhookReceiver() as hooks, serve_gateway(db_settings) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await submitted(await client.post("/openai/gpt/generations", json={
            "prompt": "draw a red fox in the snow", "model": "gpt-image-2",
            "aspect_ratio": "9:16", "hookUrl": hooks.url}))
        first = (await client.get("/openai/gpt/fetch", params={"jobId": job_id})).json()
        assert first["status"] in ("ON_QUEUE", "SUCCESS")
        if first["status"] == "ON_QUEUE":
            assert first["message"] is None and first["data"]["finishTime"] is None
        body = await wait(client, "/openai/gpt/fetch", job_id)
        assert body["status"] == "SUCCESS" and body["message"] == "success"
        data = body["data"]
        assert set(data) == GPT_KEYS
        assert data["quota"] == "3" and data["referImages"] is None
        assert len(data["finishTime"]) == 19
        assert (await picture(gw, data["imageUrl"])).size == (192, 340)  # 768x1360 / 4
        assert json.loads((await hooks.next()).body) == body
        legacy = (await client.post("/openai/4o-image/fetch", json={"jobId": job_id})).json()
        assert legacy == body
        for form in ({"data": {"job_id": job_id}}, {"files": {"jobId": (None, job_id)}}):
            answer = await client.post("/openai/gpt/fetch", **form)
            assert answer.status_code == 200 and answer.json() == body
        assert (await ledger(gw, user_id))["totals"]["settle"] == 3


async def test_gpt_image_upstream_failure_is_refunded(db_settings: Settings) -> None:
    async with serve_gateway(db_settings) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await submitted(await client.post(
            "/openai/4o-image/generations", json={"prompt": "FAILME draw a cat"}))
        body = await wait(client, "/openai/4o-image/fetch", job_id)
        assert body["status"] == "FAILED" and body["message"].startswith("[Internal error]")
        assert body["data"]["imageUrl"] is None and body["data"]["finishTime"]
        totals = (await ledger(gw, user_id))["totals"]
        assert totals == {"topup": 10, "freeze": 2, "settle": 0, "refund": 2, "overage": 0}


async def test_gpt_image_deadline_fails_and_refunds(db_settings: Settings) -> None:
    clock = ManualClock()
    async with serve_gateway(db_settings, clock=clock) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await submitted(await client.post(
            "/openai/gpt/generations", json={"prompt": "HANGME draw a cat",
                                             "model": "gpt-image-2-plus", "size": "1x1"}))
        running = (await client.get("/openai/gpt/fetch", params={"jobId": job_id})).json()
        assert running["status"] == "ON_QUEUE" and running["message"] is None
        clock.advance(301)
        wake(gw)
        body = await wait(client, "/openai/gpt/fetch", job_id)
        assert body["status"] == "FAILED" and body["message"] == "Job Timeout"
        totals = (await ledger(gw, user_id))["totals"]
        assert totals == {"topup": 10, "freeze": 4, "settle": 0, "refund": 4, "overage": 0}


async def test_gpt_image_reference_images_are_downloaded(settings: Settings) -> None:
    """referImages are fetched from where they live (a local server here)."""
    red = png((64, 64), "red")

    async def serve_image(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: "
                     + str(len(red)).encode() + b"\r\nconnection: close\r\n\r\n" + red)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve_image, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    update = {"local_scale": 0.25, "webhook_allow": "127.0.0.1"}
    try:
        async with serve_gateway(settings.model_copy(update=update)) as gw:
            _, key = await gw.create_user(balance=10)
            client = gw.client(key)
            url = f"http://127.0.0.1:{port}/ref.png"
            job_id = await submitted(await client.post("/openai/gpt/generations", json={
                "prompt": "draw the ocean in winter", "model": "gpt-image-1",
                "referImages": [url]}))
            body = await wait(client, "/openai/gpt/fetch", job_id)
            assert body["status"] == "SUCCESS", body
            assert body["data"]["referImages"] == [url]
            pixel = (await picture(gw, body["data"]["imageUrl"])).convert("RGB").resize(
                (1, 1)).getpixel((0, 0))
            assert isinstance(pixel, tuple)
            assert pixel[0] > pixel[2]  # the red reference shows through a wintry ocean
    finally:
        server.close()
        await server.wait_closed()


async def test_queued_jobs_of_both_products_cancel_and_list(settings: Settings) -> None:
    """The product-neutral cancel and listing work for Flux and GPT image jobs: the queued
    job ends FAILED in its product's shape, refunded."""
    async with serve_gateway(settings, with_worker=False) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        flux = await submitted(await client.post(
            "/flux/generate", json={"prompt": "a fox", "mode": "flux-kontext-max"}))
        gpt = await submitted(await client.post(
            "/openai/gpt/generations", json={"prompt": "draw a fox"}))
        queued = (await client.get("/openai/gpt/fetch", params={"jobId": gpt})).json()
        assert queued["status"] == "ON_QUEUE" and queued["message"] is None
        listed = (await client.get("/jobs/list")).json()["data"]
        assert {(i["jobId"], i["product"]) for i in listed} == {(flux, "flux"),
                                                                 (gpt, "gpt_image")}
        for job_id in (flux, gpt):
            response = await client.post("/jobs/cancel", json={"jobId": job_id})
            assert response.status_code == 200, response.text
        flux_body = (await client.get("/flux/fetch", params={"jobId": flux})).json()
        gpt_body = (await client.get("/openai/gpt/fetch", params={"jobId": gpt})).json()
        assert flux_body["status"] == gpt_body["status"] == "FAILED"
        assert gpt_body["message"] == flux_body["message"] != ""
        totals = (await ledger(gw, user_id))["totals"]
        assert totals == {"topup": 10, "freeze": 7, "settle": 0, "refund": 7, "overage": 0}
