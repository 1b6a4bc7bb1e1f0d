"""gengate in front of another TTAPI-compatible upstream (here: a second gengate), with an
operator key: the whole lifecycle relays, and the upstream's refusals route correctly."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway

V1 = "/midjourney/v1"


def _png(color: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def test_relay_every_midjourney_product_to_a_ttapi_upstream(settings: Settings,
                                                                   tmp_path: Path) -> None:
    upstream_settings = settings.model_copy(update={"data_dir": tmp_path / "upstream"})
    front_settings = settings.model_copy(update={"data_dir": tmp_path / "front",
                                                 "local_account": False})
    async with serve_gateway(upstream_settings) as upstream, \
            serve_gateway(front_settings) as front:
        operator_id, operator_key = await upstream.create_user(balance=100, max_queue=20)
        response = await front.http.post(
            "/admin/accounts", headers={"Authorization": f"Bearer {front.admin_key}"},
            json={"name": "upstream", "provider": "ttapi", "baseUrl": upstream.base_url,
                  "apiKey": operator_key, "slots": {"fast": 5, "relax": 2}})
        assert response.status_code == 200, response.text
        assert operator_key not in response.text
        _, key = await front.create_user(balance=50, max_queue=20)
        client = front.client(key)

        grid = await _run(front, client, "imagine", {"prompt": "a tram at dawn --ar 3:2"})
        assert grid["data"]["components"][:4] == ["upsample1", "upsample2", "upsample3",
                                                  "upsample4"]
        single = await _run(front, client, "action",
                            {"jobId": grid["jobId"], "action": "upsample3"})
        image = await _image(client, single["data"]["cdnImage"])
        assert image.size[0] > image.size[1]  # the 3:2 picture survived both hops
        seed = await _run(front, client, "seed", {"jobId": grid["jobId"]})
        assert seed["data"]["seed"]
        described = await _run(front, client, "describe", {"base64": _png("navy")})
        assert len(described["data"]["prompts"]) == 4
        blended = await _run(front, client, "blend",
                             {"imgBase64Array": [_png("red"), _png("yellow")],
                              "dimensions": "PORTRAIT"})
        blend_image = await _image(client, blended["data"]["cdnImage"])
        assert blend_image.size[1] > blend_image.size[0]

        # the results are gengate's own copies, not links to the upstream
        for body in (grid, single, blended):
            assert body["data"]["cdnImage"].startswith(front.base_url)
        # the operator paid the upstream; the user paid the front
        up_info = (await upstream.client(operator_key).get(f"{V1}/info")).json()["data"]
        assert up_info["freeze_balance"] == 0 and up_info["balance"] < 100
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["freeze_balance"] == 0 and info["balance"] == 50 - 2 - 2 - 0 - 1 - 2
        del operator_id


async def test_upstream_out_of_quota_flags_the_account_and_refunds(settings: Settings,
                                                                   tmp_path: Path) -> None:
    upstream_settings = settings.model_copy(update={"data_dir": tmp_path / "upstream"})
    front_settings = settings.model_copy(update={"data_dir": tmp_path / "front",
                                                 "local_account": False, "max_attempts": 2})
    async with serve_gateway(upstream_settings) as upstream, \
            serve_gateway(front_settings) as front:
        _, broke_key = await upstream.create_user(balance=0)
        admin = {"Authorization": f"Bearer {front.admin_key}"}
        created = await front.http.post("/admin/accounts", headers=admin, json={
            "name": "broke", "provider": "ttapi", "baseUrl": upstream.base_url,
            "apiKey": broke_key})
        account_id = created.json()["data"]["id"]
        _, key = await front.create_user(balance=10)
        client = front.client(key)
        job = (await client.post(f"{V1}/imagine", json={"prompt": "a fox"})).json()
        body = await front.wait(client, job["data"]["jobId"])
        # its only account needs an operator now: the job fails at once, refunded
        assert body["status"] == "FAILED"
        assert body["message"].startswith("No available accounts")
        account = (await front.http.get(f"/admin/accounts/{account_id}",
                                        headers=admin)).json()["data"]
        assert account["state"] == "attention"
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["balance"] == 10 and info["freeze_balance"] == 0
        # with its only account flagged, new jobs are refused up front
        refused = await client.post(f"{V1}/imagine", json={"prompt": "a fox"})
        assert refused.status_code == 400
        assert "No available accounts" in refused.json()["message"]


async def _run(front: Gateway, client: httpx.AsyncClient, path: str,
               body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"{V1}/{path}", json=body)
    assert response.status_code == 200, response.text
    job_id = response.json()["data"]["jobId"]
    result = await front.wait(client, job_id)
    assert result["status"] == "SUCCESS", result
    return result


async def _image(client: httpx.AsyncClient, url: str) -> Image.Image:
    response = await client.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))
