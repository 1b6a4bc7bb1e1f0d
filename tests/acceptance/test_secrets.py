"""Keys and secrets never show up in logs or in responses that are not meant to carry them."""

from __future__ import annotations

import logging

import pytest

from gengate.config import Settings
from gengate.testing import serve_gateway

V1 = "/midjourney/v1"


async def test_keys_stay_out_of_logs_and_listings(settings: Settings,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    failing = settings.model_copy(update={"local_fail_marker": "FAIL"})
    async with serve_gateway(failing) as gw:
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        for prompt in ("a cat", "a FAIL cat"):
            job = (await client.post(f"{V1}/imagine", json={"prompt": prompt})).json()
            await gw.wait(client, job["data"]["jobId"])
        await gw.http.get(f"{V1}/info", headers={"TT-API-KEY": key + "x"})
        admin = {"Authorization": f"Bearer {gw.admin_key}"}
        listed = (await gw.http.get(f"/admin/users/{user_id}/keys", headers=admin)).text
        users = (await gw.http.get("/admin/users", headers=admin)).text
        secret = (await client.get("/webhooks/secret")).json()["data"]["secret"]
    logged = caplog.text + repr(failing)
    for value in (key, gw.admin_key, secret):
        assert value not in logged
    assert key not in listed and key not in users
