"""Bad input: a 4xx envelope that says what is wrong, no charge, nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway

from .test_lifecycle import png_b64

V1 = "/midjourney/v1"


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[Gateway]:
    async with serve_gateway(settings.model_copy(update={"max_body_bytes": 200_000})) as g:
        yield g


async def _nothing_happened(gw: Gateway, client: httpx.AsyncClient, balance: float) -> None:
    info = (await client.get(f"{V1}/info")).json()["data"]
    assert info["balance"] == balance and info["freeze_balance"] == 0
    listed = (await client.get(f"{V1}/fetch-list", params={"status": "all"})).json()["data"]
    assert listed == []


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({}, 400, "prompt"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": "   "}, 400, "prompt"),
    ({"prompt": "cat", "mode": "slow"}, 400, "mode"),
    ({"prompt": "cat", "model": "warp"}, 400, "mode"),
    ({"prompt": "cat", "timeout": 299}, 400, "timeout"),
    ({"prompt": "cat", "timeout": 1201}, 400, "timeout"),
    ({"prompt": "cat", "mode": "relax", "timeout": 300}, 400, "timeout"),
    ({"prompt": "cat", "timeout": "soon"}, 400, "timeout"),
    ({"prompt": "cat --v 8"}, 400, "[Invalid parameter] Invalid value for argument: `--v`:`8`"),
    ({"prompt": "cat --ar16:9"}, 400, "--ar16:9"),
    ({"prompt": "cat", "hookUrl": "ftp://x"}, 400, "hookUrl"),
    ({"prompt": 5}, 400, "prompt"),
])
async def test_imagine_rejects(gw: Gateway, body: dict[str, Any], status: int,
                              needle: str) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    response = await client.post(f"{V1}/imagine", json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["status"] == "FAILED" and payload["data"] is None
    assert needle in payload["message"]
    await _nothing_happened(gw, client, 10)


async def test_transport_level_errors(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    bad_json = await client.post(f"{V1}/imagine", content=b'{"prompt": ',
                                 headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "invalid JSON" in bad_json.json()["message"]
    not_object = await client.post(f"{V1}/imagine", json=["cat"])
    assert not_object.status_code == 400
    wrong_type = await client.post(f"{V1}/imagine", content=b"prompt=cat",
                                   headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415 and "application/json" in wrong_type.json()["message"]
    too_big = await client.post(f"{V1}/imagine", json={"prompt": "x" * 300_000})
    assert too_big.status_code == 413 and too_big.json()["status"] == "FAILED"
    method = await client.get(f"{V1}/imagine")
    assert method.status_code == 405
    unknown = await client.get(f"{V1}/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["status"] == "FAILED"
    await _nothing_happened(gw, client, 10)


async def test_auth_headers_and_401(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=10)
    for headers in ({"TT-API-KEY": key}, {"Authorization": f"Bearer {key}"},
                    {"x-api-key": key}):
        response = await gw.http.get(f"{V1}/info", headers=headers)
        assert response.status_code == 200, headers
    for headers in ({}, {"TT-API-KEY": "wrong"}, {"Authorization": "Bearer nope"}):
        response = await gw.http.post(f"{V1}/imagine", json={"prompt": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"status": "FAILED",
                                   "message": "Wrong TT-API-KEY or email is not activated.",
                                   "data": None}


async def test_image_inputs_are_checked(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    cases = [
        ("blend", {"imgBase64Array": [png_b64((1, 2, 3))]}, "2 to 5"),
        ("blend", {"imgBase64Array": [png_b64((1, 2, 3))] * 6}, "2 to 5"),
        ("blend", {"imgBase64Array": [png_b64((1, 2, 3)), "data:image/png;base64,%%%"]},
         "imgBase64Array[1]"),
        ("blend", {"imgBase64Array": [png_b64((1, 2, 3)), "aGVsbG8gd29ybGQ="]},
         "imgBase64Array[1]"),
        ("blend", {"imgBase64Array": [png_b64((1, 2, 3))] * 2, "dimensions": "WIDE"},
         "dimensions"),
        ("describe", {}, "base64"),
        ("describe", {"base64": "bm90IGFuIGltYWdl"}, "base64"),
        ("inpaint", {"jobId": "missing", "mask": "x"}, "missing"),
        ("seed", {}, "jobId"),
        ("action", {"jobId": "x"}, "action"),
    ]
    for path, body, needle in cases:
        response = await client.post(f"{V1}/{path}", json=body)
        assert 400 <= response.status_code < 500, (path, body, response.text)
        assert needle in response.json()["message"], (path, response.json())
    await _nothing_happened(gw, client, 10)


async def test_mask_of_the_wrong_size(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    grid_id = (await client.post(f"{V1}/imagine", json={"prompt": "a boat"})).json()["data"]
    await gw.wait(client, grid_id["jobId"])
    up = (await client.post(f"{V1}/action", json={"jobId": grid_id["jobId"],
                                                  "action": "upsample1"})).json()["data"]
    await gw.wait(client, up["jobId"])
    response = await client.post(f"{V1}/inpaint", json={
        "jobId": up["jobId"], "mask": png_b64((255, 255, 255), (10, 10), prefix=False)})
    assert response.status_code == 400 and "mask" in response.json()["message"]
    info = (await client.get(f"{V1}/info")).json()["data"]
    assert info["balance"] == 6 and info["freeze_balance"] == 0


async def test_fetch_list_paging(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=100, max_queue=20)
    client = gw.client(key)
    ids = []
    for i in range(7):
        ids.append((await client.post(f"{V1}/imagine", json={"prompt": f"p{i}"})).json()
                   ["data"]["jobId"])
    for job_id in ids:
        await gw.wait(client, job_id)
    page1 = (await client.get(f"{V1}/fetch-list", params={"limit": 3})).json()["data"]
    page3 = (await client.get(f"{V1}/fetch-list", params={"limit": 3, "page": 3})).json()
    assert [j["job_id"] for j in page1] == ids[::-1][:3]
    assert [j["job_id"] for j in page3["data"]] == ids[::-1][6:]
    asc = (await client.post(f"{V1}/fetch-list",
                             json={"limit": 100, "order": "asc"})).json()["data"]
    assert [j["job_id"] for j in asc] == ids
    assert all(j["status"] == 2 and j["model"] == "fast" for j in asc)
    assert (await client.get(f"{V1}/fetch-list", params={"limit": 101})).status_code == 400
    assert (await client.get(f"{V1}/fetch-list", params={"page": 0})).status_code == 400
    failed = (await client.get(f"{V1}/fetch-list", params={"status": "failed"})).json()
    assert failed["data"] == []
    by_code = (await client.post(f"{V1}/fetch-list", json={"status": 2, "limit": 3})).json()
    assert [j["job_id"] for j in by_code["data"]] == ids[::-1][:3]


async def test_all_black_mask_and_private_describe_url(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    grid = (await client.post(f"{V1}/imagine", json={"prompt": "a dune"})).json()["data"]
    await gw.wait(client, grid["jobId"])
    up = (await client.post(f"{V1}/action", json={"jobId": grid["jobId"],
                                                  "action": "upsample1"})).json()["data"]
    done = await gw.wait(client, up["jobId"])
    size = (done["data"]["width"], done["data"]["height"])
    black = await client.post(f"{V1}/inpaint", json={
        "jobId": up["jobId"], "mask": png_b64((0, 0, 0), size, prefix=False)})
    assert black.status_code == 400 and "white" in black.json()["message"]
    private = await client.post(f"{V1}/describe", json={"url": "http://127.0.0.1:9/a.png"})
    assert private.status_code == 400 and private.json()["message"].startswith("url:")
    info = (await client.get(f"{V1}/info")).json()["data"]
    assert info["balance"] == 6 and info["freeze_balance"] == 0
