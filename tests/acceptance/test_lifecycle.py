"""The whole job life over a real socket: imagine, then every action family."""

from __future__ import annotations

import base64
import io
import sqlite3
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from PIL import Image
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway

V1 = "/midjourney/v1"


def png_b64(color: tuple[int, int, int], size: tuple[int, int] = (64, 64), *,
            prefix: bool = True) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    return f"data:image/png;base64,{data}" if prefix else data


async def submit(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> str:
    response = await client.post(f"{V1}/{path}", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["status"] == "SUCCESS" and payload["message"] == "success"
    assert payload["data"]["jobId"] == payload["data"]["job_id"]
    return str(payload["data"]["jobId"])


async def image_of(gw: Gateway, url: str) -> Image.Image:
    assert url.startswith(gw.base_url + "/cdn/")
    response = await gw.http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


async def run(gw: Gateway, client: httpx.AsyncClient, path: str,
              body: dict[str, Any]) -> dict[str, Any]:
    job_id = await submit(client, path, body)
    result = await gw.wait(client, job_id)
    assert result["status"] == "SUCCESS", result
    assert result["jobId"] == job_id and result["data"]["jobId"] == job_id
    return cast("dict[str, Any]", result["data"])


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[Gateway]:
    async with serve_gateway(settings) as gateway:
        yield gateway


async def test_imagine_end_to_end_matches_the_contract(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=100)
    client = gw.client(key)
    job_id = await submit(client, "imagine",
                          {"prompt": "a cute kitten --ar 4:5", "mode": "fast",
                           "getUImages": True})
    first = (await client.get(f"{V1}/fetch", params={"jobId": job_id})).json()
    assert first["status"] in ("PENDING_QUEUE", "ON_QUEUE", "SUCCESS")
    body = await gw.wait(client, job_id)
    data = body["data"]
    assert body["status"] == "SUCCESS" and body["message"] == ""
    assert data["action"] == "imagine" and data["progress"] == "100" and data["quota"] == "2"
    assert data["prompt"] == "a cute kitten --ar 4:5"
    assert data["width"] * 5 == data["height"] * 4
    grid = await image_of(gw, data["cdnImage"])
    assert grid.size == (data["width"], data["height"])
    assert data["discordImage"] == data["cdnImage"]
    assert data["components"] == ["upsample1", "upsample2", "upsample3", "upsample4", "reroll",
                                  "variation1", "variation2", "variation3", "variation4"]
    assert [u[-6:] for u in data["images"]] == ["tl.png", "tr.png", "bl.png", "br.png"]
    tiles = [await image_of(gw, u) for u in data["images"]]
    assert all(t.size == (grid.width // 2, grid.height // 2) for t in tiles)
    assert tiles[0].tobytes() == grid.crop((0, 0, grid.width // 2, grid.height // 2)).tobytes()
    for key_ in ("hookUrl", "seed"):
        assert key_ in data
    posted = (await client.post(f"{V1}/fetch", json={"job_id": job_id})).json()
    assert posted == body


async def test_every_action_family(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=1000, max_queue=20)
    client = gw.client(key)
    grid = await run(gw, client, "imagine", {"prompt": "mountain lake --ar 3:2 --v 6.1"})
    upscaled = await run(gw, client, "action", {"jobId": grid["jobId"], "action": "upsample2"})
    assert upscaled["width"] == grid["width"] and upscaled["height"] == grid["height"]
    assert "upscale_subtle" in upscaled["components"]
    assert "make_square" in upscaled["components"]
    for action in ("variation3", "reroll"):
        data = await run(gw, client, "action", {"jobId": grid["jobId"], "action": action})
        assert data["components"][0] == "upsample1"
    for action in ("high_variation", "low_variation", "zoom_out_2", "zoom_out_1_5x",
                   "pan_left", "pan_up", "make_square"):
        data = await run(gw, client, "action", {"jobId": upscaled["jobId"], "action": action})
        assert data["action"] == action.removesuffix("x")
        assert data["components"][0] == "upsample1"
        await image_of(gw, data["cdnImage"])
    sq = await run(gw, client, "action", {"jobId": upscaled["jobId"], "action": "make_square"})
    assert sq["width"] == sq["height"]
    pan = await run(gw, client, "action", {"jobId": upscaled["jobId"], "action": "pan_left"})
    assert pan["width"] / pan["height"] > grid["width"] / grid["height"]
    big = await run(gw, client, "action",
                    {"jobId": upscaled["jobId"], "action": "upscale_creative"})
    assert big["width"] == 2 * upscaled["width"]
    assert big["components"] == ["redo_upscale_subtle", "redo_upscale_creative"]
    redo = await run(gw, client, "action", {"jobId": big["jobId"], "action": "redo_upscale_subtle"})
    assert redo["width"] == big["width"]
    seed = await run(gw, client, "seed", {"jobId": grid["jobId"]})
    assert seed["seed"] is not None and seed["seed"].isdigit()
    mask = Image.new("L", (upscaled["width"], upscaled["height"]), 0)
    mask.paste(255, (0, 0, upscaled["width"] // 2, upscaled["height"] // 2))
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    inpainted = await run(gw, client, "inpaint", {
        "jobId": upscaled["jobId"], "mask": base64.b64encode(buf.getvalue()).decode(),
        "prompt": "a red boat"})
    assert inpainted["action"] == "inpaint"


async def test_v5_upscales_blend_and_describe(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=1000)
    client = gw.client(key)
    grid = await run(gw, client, "imagine", {"prompt": "a castle --v 5.2"})
    one = await run(gw, client, "action", {"jobId": grid["jobId"], "action": "upsample4"})
    assert "upscale2" in one["components"] and "upscale_subtle" not in one["components"]
    two = await run(gw, client, "action", {"jobId": one["jobId"], "action": "upscale2"})
    assert two["width"] == 2 * one["width"]
    assert two["components"] == ["redo_upscale2", "redo_upscale4"]
    blended = await run(gw, client, "blend", {
        "imgBase64Array": [png_b64((255, 0, 0)), png_b64((0, 0, 255))],
        "dimensions": "LANDSCAPE", "getUImages": True})
    assert blended["width"] * 2 == blended["height"] * 3
    assert len(blended["images"]) == 4
    described = await run(gw, client, "describe", {"base64": png_b64((200, 20, 20), (80, 40))})
    assert len(described["prompts"]) == 4
    assert all(p.endswith("--ar 2:1") for p in described["prompts"])
    assert described["prompt"].count("--ar 2:1") == 4
    assert described["cdnImage"] is None


async def test_actions_are_checked_against_the_parent(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=100)
    _, other_key = await gw.create_user(balance=100)
    client, other = gw.client(key), gw.client(other_key)
    grid = await run(gw, client, "imagine", {"prompt": "a lighthouse"})
    wrong_kind = await client.post(f"{V1}/action",
                                   json={"jobId": grid["jobId"], "action": "zoom_out_2"})
    assert wrong_kind.status_code == 400
    assert "zoom_out_2" in wrong_kind.json()["message"]
    unknown = await client.post(f"{V1}/action", json={"jobId": grid["jobId"], "action": "U1"})
    assert unknown.status_code == 400 and "action" in unknown.json()["message"]
    foreign = await other.post(f"{V1}/action",
                               json={"jobId": grid["jobId"], "action": "upsample1"})
    assert foreign.status_code == 404
    assert (await other.get(f"{V1}/fetch", params={"jobId": grid["jobId"]})).status_code == 404
    missing = await client.post(f"{V1}/action", json={"jobId": "nope", "action": "upsample1"})
    assert missing.status_code == 404
    info = (await client.get(f"{V1}/info")).json()["data"]
    assert info["balance"] == 98 and info["freeze_balance"] == 0


async def test_redo_of_a_redo_upscales_the_picked_image(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=100)
    client = gw.client(key)
    grid = await run(gw, client, "imagine", {"prompt": "a lake --v 5.2"})
    one = await run(gw, client, "action", {"jobId": grid["jobId"], "action": "upsample1"})
    two = await run(gw, client, "action", {"jobId": one["jobId"], "action": "upscale2"})
    redo = await run(gw, client, "action", {"jobId": two["jobId"], "action": "redo_upscale2"})
    again = await run(gw, client, "action", {"jobId": redo["jobId"], "action": "redo_upscale2"})
    assert two["width"] == redo["width"] == again["width"] == 2 * one["width"]


async def test_describe_downloads_a_url_from_the_checked_address(settings: Settings) -> None:
    settings = settings.model_copy(update={"webhook_allow": "127.0.0.1,::1"})
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job = (await client.post(f"{V1}/imagine", json={"prompt": "a green field"})).json()
        grid = await gw.wait(client, job["data"]["jobId"])
        # by host name: the download goes to the address that was checked, Host kept
        url = grid["data"]["cdnImage"].replace("127.0.0.1", "localhost")
        described = (await client.post(f"{V1}/describe", json={"url": url})).json()
        body = await gw.wait(client, described["data"]["jobId"])
        assert body["status"] == "SUCCESS", body
        assert len(body["data"]["prompts"]) == 4


async def test_an_instant_local_result_is_not_held_for_a_poll_interval(
        settings: Settings) -> None:
    # the local renderer with no delay has the result at the first poll: a long upstream
    # polling interval must not hold every job that long
    settings = settings.model_copy(update={"upstream_poll_interval": 120.0})
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job = (await client.post(f"{V1}/imagine", json={"prompt": "a quick sketch"})).json()
        body = await gw.wait(client, job["data"]["jobId"], timeout=60)
        assert body["status"] == "SUCCESS"


def _set_progress(conn: Connection, job_id: str, progress: int) -> None:
    conn.exec_driver_sql("UPDATE jobs SET progress = ? WHERE id = ?", (progress, job_id))


async def test_a_queued_job_fetch_shows_each_change_at_once(settings: Settings) -> None:
    # a queued job's fetch body is kept between changes: every writer must be seen at once
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=100)
        client = gw.client(key)
        job_id = await submit(client, "imagine", {"prompt": "a quiet harbour at dawn"})

        async def fetch() -> dict[str, Any]:
            response = await client.get(f"{V1}/fetch", params={"jobId": job_id})
            assert response.status_code == 200, response.text
            return cast("dict[str, Any]", response.json())

        first = await fetch()
        assert first["status"] == "PENDING_QUEUE" and first["data"]["progress"] == "0"
        # admissions of other jobs leave it as it was
        await submit(client, "imagine", {"prompt": "a second harbour"})
        assert await fetch() == first
        # a write of this process (not an admission)
        await gw.runtime.store.db.run(_set_progress, job_id, 30)
        assert (await fetch())["data"]["progress"] == "30"
        # another process's commit, on its own connection to the database file
        path = make_url(settings.resolved_database_url()).database
        assert path is not None
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("UPDATE jobs SET status = 'ON_QUEUE', progress = 60 WHERE id = ?",
                          (job_id,))
        finally:
            other.close()
        moved = await fetch()
        assert moved["status"] == "ON_QUEUE" and moved["data"]["progress"] == "60"
        # another user never gets it from memory
        _, stranger = await gw.create_user(balance=1)
        response = await gw.client(stranger).get(f"{V1}/fetch", params={"jobId": job_id})
        assert response.status_code == 404
