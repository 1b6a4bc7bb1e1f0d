"""Flux and GPT image on remote upstreams, through the whole engine over real sockets: a
Black Forest Labs account against the fake BFL API, an OpenAI account against the fake
OpenAI Images API, and a TTAPI-compatible account (a second gengate) relaying both."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway
from gengate.testing.bfl import FakeBfl
from gengate.testing.openai_images import FakeOpenAIImages


async def add_account(gw: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    response = await gw.http.post("/admin/accounts", json=body,
                                  headers={"Authorization": f"Bearer {gw.admin_key}"})
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def run(client: httpx.AsyncClient, submit: str, body: dict[str, Any], fetch: str
              ) -> dict[str, Any]:
    response = await client.post(submit, json=body)
    assert response.status_code == 200, response.text
    job_id = response.json()["data"]["jobId"]
    async with asyncio.timeout(30):
        while True:
            answer = (await client.get(fetch, params={"jobId": job_id})).json()
            if answer["status"] in ("SUCCESS", "FAILED"):
                return dict(answer)
            await asyncio.sleep(0.02)


async def size_of(client: httpx.AsyncClient, url: str) -> tuple[int, int]:
    response = await client.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content)).size


async def balance(client: httpx.AsyncClient) -> tuple[float, float]:
    info = (await client.get("/midjourney/v1/info")).json()["data"]
    return info["balance"], info["freeze_balance"]


async def test_flux_on_a_black_forest_labs_account(settings: Settings) -> None:
    front = settings.model_copy(update={"local_account": False})
    async with FakeBfl(keys=("bfl-secret",), duration=0.1) as bfl, serve_gateway(front) as gw:
        account = await add_account(gw, {"name": "bfl", "provider": "bfl",
                                         "baseUrl": bfl.base_url, "apiKey": "bfl-secret"})
        assert account["products"] == ["flux"] and "bfl-secret" not in str(account)
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        done = await run(client, "/flux/generate", {
            "prompt": "a lighthouse at sunset", "mode": "flux-kontext-pro",
            "aspect_ratio": "16:9"}, "/flux/fetch")
        assert done["status"] == "SUCCESS", done
        assert bfl.submissions[0] == ("flux-kontext-pro", {"prompt": "a lighthouse at sunset",
                                                           "aspect_ratio": "16:9"})
        # the picture BFL made (1376x768 at the fake's quarter scale), copied to gengate
        assert done["data"]["imageUrl"].startswith(gw.base_url)
        assert await size_of(client, done["data"]["imageUrl"]) == (344, 192)
        assert done["data"]["size"] == "344x192"
        moderated = await run(client, "/flux/generate", {
            "prompt": "a forbiddenword", "mode": "flux-2-pro"}, "/flux/fetch")
        assert moderated["status"] == "FAILED"
        assert moderated["message"].startswith("[Request Moderated]")
        assert await balance(client) == (20 - 2, 0)  # the moderated job was refunded
        assert all(k == "bfl-secret" for _, p, k in bfl.requests if p.startswith("/v1/"))


async def test_gpt_image_on_an_openai_account(settings: Settings) -> None:
    front = settings.model_copy(update={"local_account": False})
    async with FakeOpenAIImages(keys=("sk-secret",)) as openai, serve_gateway(front) as gw:
        account = await add_account(gw, {"name": "oai", "provider": "openai",
                                         "baseUrl": openai.base_url, "apiKey": "sk-secret"})
        assert account["products"] == ["gpt_image", "openai_images"]
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        done = await run(client, "/openai/gpt/generations", {
            "prompt": "draw a red fox", "model": "gpt-image-2-plus", "size": "2048x1152"},
            "/openai/gpt/fetch")
        assert done["status"] == "SUCCESS" and done["message"] == "success", done
        assert openai.requests[0].fields["size"] == "2048x1152"
        assert await size_of(client, done["data"]["imageUrl"]) == (512, 288)
        refused = await run(client, "/openai/4o-image/generations",
                            {"prompt": "a forbiddenword"}, "/openai/4o-image/fetch")
        assert refused["status"] == "FAILED"
        assert refused["message"].startswith("[Content Moderated]")
        assert openai.requests[1].fields["model"] == "gpt-image-1"
        assert await balance(client) == (20 - 4, 0)


async def test_flux_and_gpt_image_relay_to_a_ttapi_upstream(settings: Settings,
                                                            tmp_path: Path) -> None:
    upstream_settings = settings.model_copy(update={"data_dir": tmp_path / "upstream",
                                                    "local_scale": 0.25})
    front_settings = settings.model_copy(update={"data_dir": tmp_path / "front",
                                                 "local_account": False})
    async with serve_gateway(upstream_settings) as upstream, \
            serve_gateway(front_settings) as front:
        _, operator_key = await upstream.create_user(balance=100, max_queue=20)
        await add_account(front, {"name": "tt", "provider": "ttapi",
                                  "baseUrl": upstream.base_url, "apiKey": operator_key,
                                  "products": ["flux", "gpt_image"]})
        _, key = await front.create_user(balance=50)
        client = front.client(key)
        flux = await run(client, "/flux/generate", {
            "prompt": "a tram at dawn", "mode": "flux1-dev", "size": "1792x1024"}, "/flux/fetch")
        assert flux["status"] == "SUCCESS", flux
        assert flux["data"]["imageUrl"].startswith(front.base_url)
        assert await size_of(client, flux["data"]["imageUrl"]) == (448, 256)
        edit = await client.post("/flux/edits", data={"prompt": "at night"}, files=[
            ("image", ("a.png", _png((300, 100)), "image/png"))])
        edited = await _wait(client, edit.json()["data"]["jobId"], "/flux/fetch")
        assert edited["status"] == "SUCCESS", edited
        assert await size_of(client, edited["data"]["imageUrl"]) == (392, 168)  # 21:9 at most
        gpt = await run(client, "/openai/gpt/generations", {
            "prompt": "draw a fox", "model": "gpt-image-2", "aspect_ratio": "16:9"},
            "/openai/gpt/fetch")
        assert gpt["status"] == "SUCCESS", gpt
        assert await size_of(client, gpt["data"]["imageUrl"]) == (340, 192)
        up = (await upstream.client(operator_key).get("/midjourney/v1/info")).json()["data"]
        assert up["balance"] == 100 - 1 - 2 - 3 and up["freeze_balance"] == 0
        # the account runs only what it names
        refused = await client.post("/midjourney/v1/imagine", json={"prompt": "a cat"})
        assert refused.status_code == 400 and "No available accounts" in refused.text


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "orange").save(buffer, "PNG")
    return buffer.getvalue()


async def _wait(client: httpx.AsyncClient, job_id: str, fetch: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            answer = (await client.get(fetch, params={"jobId": job_id})).json()
            if answer["status"] in ("SUCCESS", "FAILED"):
                return dict(answer)
            await asyncio.sleep(0.02)


async def test_account_products_are_checked(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        admin = {"Authorization": f"Bearer {gw.admin_key}"}
        wrong = await gw.http.post("/admin/accounts", headers=admin, json={
            "name": "b", "provider": "bfl", "apiKey": "k", "products": ["gpt_image"]})
        assert wrong.status_code == 400
        assert "a bfl account cannot run `gpt_image`" in wrong.json()["message"]
        unknown = await gw.http.post("/admin/accounts", headers=admin, json={
            "name": "t", "provider": "ttapi", "baseUrl": "https://x.example", "apiKey": "k",
            "products": ["luma"]})  # not a product here
        assert unknown.status_code == 400 and "cannot run `luma`" in unknown.json()["message"]
        keyless = await gw.http.post("/admin/accounts", headers=admin,
                                     json={"name": "o", "provider": "openai"})
        assert keyless.status_code == 400 and "apiKey" in keyless.json()["message"]
        default = await add_account(gw, {"name": "o", "provider": "openai", "apiKey": "k"})
        assert default["baseUrl"] == "https://api.openai.com"


async def test_an_openai_outage_moves_the_job_to_another_account(settings: Settings) -> None:
    front = settings.model_copy(update={"local_account": False})
    async with FakeOpenAIImages(keys=("sk-a", "sk-b")) as openai, serve_gateway(front) as gw:
        first = await add_account(gw, {"name": "a", "provider": "openai", "priority": 10,
                                       "baseUrl": openai.base_url, "apiKey": "sk-a"})
        await add_account(gw, {"name": "b", "provider": "openai",
                               "baseUrl": openai.base_url, "apiKey": "sk-b"})
        openai.plan.append(500)
        _, key = await gw.create_user(balance=20)
        client = gw.client(key)
        done = await run(client, "/openai/gpt/generations", {"prompt": "draw a fox"},
                         "/openai/gpt/fetch")
        assert done["status"] == "SUCCESS", done
        keys = [r.authorization for r in openai.requests if r.path.startswith("/v1/images")]
        assert keys == ["Bearer sk-a", "Bearer sk-b"]
        accounts = (await gw.http.get("/admin/accounts", headers={
            "Authorization": f"Bearer {gw.admin_key}"})).json()["data"]
        state = next(a for a in accounts if a["id"] == first["id"])
        assert state["state"] == "cooling" and "unavailable" in state["stateReason"]
        assert await balance(client) == (20 - 3, 0)
