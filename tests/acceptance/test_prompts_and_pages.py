"""Prompt checks at the front door, the illegal-prompt rule, and the public pages."""

from __future__ import annotations

from gengate.config import Settings
from gengate.testing import serve_gateway

V1 = "/midjourney/v1"


async def test_prompt_check_and_synchronous_rejections(settings: Settings) -> None:
    async with serve_gateway(settings, with_worker=False) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        good = await client.post(f"{V1}/promptCheck", json={"prompt": "a cat --ar 16:9 --v 6.1"})
        assert good.json() == {"status": "SUCCESS", "message": "success",
                               "data": "Prompt verification successful."}
        bad = await client.post(f"{V1}/promptCheck", json={"prompt": "a cat --v 8"})
        assert bad.status_code == 400
        assert bad.json()["message"] == \
            "[Invalid parameter] Invalid value for argument: `--v`:`8`"
        banned = await client.post(f"{V1}/imagine", json={"prompt": "a n.u.d.e portrait"})
        assert banned.status_code == 400
        assert banned.json()["message"].startswith("[Banned prompt detected]")
        perm = await client.post(f"{V1}/imagine", json={"prompt": "a {red, blue} bird"})
        assert perm.status_code == 400 and "permutation" in perm.json()["message"]
        relax = await client.post(f"{V1}/imagine", json={"prompt": "a cat --relax"})
        job = (await client.get(f"{V1}/fetch", params={"jobId": relax.json()["data"]["jobId"]}))
        assert job.json()["data"]["mode"] == "relax" and job.json()["data"]["quota"] == "1"
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["balance"] == 9 and info["freeze_balance"] == 1


async def test_illegal_prompt_failures_stop_being_refunded(settings: Settings) -> None:
    settings = settings.model_copy(update={
        "local_fail_marker": "BADLINK", "illegal_prompt_daily_limit": 1,
        "local_fail_message": "[Invalid link!] could not fetch the image"})
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        for _ in range(2):
            job = (await client.post(f"{V1}/imagine", json={"prompt": "BADLINK cat"})).json()
            body = await gw.wait(client, job["data"]["jobId"])
            assert body["status"] == "FAILED"
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["illegal_prompts_today"] == 2
        assert info["balance"] == 8 and info["freeze_balance"] == 0


async def test_public_pages(settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job = (await client.post(f"{V1}/imagine", json={"prompt": "a cat"})).json()
        await gw.wait(client, job["data"]["jobId"])
        status = (await gw.http.get("/midjourney/status")).json()
        assert set(status["data"]) == {"fast", "relax", "turbo"}
        assert status["data"]["fast"]["status"] == 200
        assert status["data"]["fast"]["finished"] == 1
        assert status["data"]["fast"]["averageExecute"] >= 0
        assert status["data"]["fast"]["slots"] == settings.local_slots
        assert status["data"]["fast"]["slotsInUse"] == 0
        html = await gw.http.get("/status")
        assert html.status_code == 200 and "fast" in html.text
        metrics = await gw.http.get("/metrics")
        assert "gengate_job_success_ratio" in metrics.text
        assert 'gengate_account_state{account="local",state="healthy"} 1.0' in metrics.text
        assert 'gengate_account_slots{account="local",mode="relax"}' in metrics.text
        # with its only account disabled, the status says so instead of "running"
        admin = {"Authorization": f"Bearer {gw.admin_key}"}
        local = (await gw.http.get("/admin/accounts", headers=admin)).json()["data"][0]
        await gw.http.patch(f"/admin/accounts/{local['id']}", json={"enabled": False},
                            headers=admin)
        down = (await gw.http.get("/midjourney/status")).json()["data"]["fast"]
        assert down["status"] == 503 and down["slots"] == 0
        assert "no healthy upstream account" in down["runningMessage"]
        refused = await client.post(f"{V1}/imagine", json={"prompt": "a cat"})
        assert refused.status_code == 400
        assert refused.json()["message"].startswith("No available accounts")
        health = (await gw.http.get("/healthz")).json()
        assert health["data"]["database"] == "ok"
        doc = (await gw.http.get("/openapi.json")).json()
        for path in ("imagine", "action", "blend", "describe", "seed", "inpaint", "fetch",
                     "fetch-list", "info", "promptCheck"):
            assert f"{V1}/{path}" in doc["paths"]
        imagine = doc["paths"][f"{V1}/imagine"]["post"]
        schema = doc["components"]["schemas"]["ImagineRequest"]
        assert imagine["requestBody"] and "prompt" in schema["required"]
        assert "/admin/users" in doc["paths"]
        missing = await gw.http.get("/cdn/midjourney/nope.png")
        assert missing.status_code == 404


async def test_admin_api_requires_the_admin_key(settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "x"}):
            response = await gw.http.get("/admin/users", headers=headers)
            assert response.status_code == 401 and response.json()["status"] == "FAILED"
        admin = {"Authorization": f"Bearer {gw.admin_key}"}
        user_id, key = await gw.create_user(balance=3)
        dup = await gw.http.post("/admin/users", json={"email": "user1@example.com"},
                                 headers=admin)
        assert dup.status_code == 409
        bad = await gw.http.post("/admin/users", json={"email": "nope"}, headers=admin)
        assert bad.status_code == 400 and "email" in bad.json()["message"]
        top = await gw.http.post(f"/admin/users/{user_id}/topup", json={"amount": 7},
                                 headers=admin)
        assert top.json()["data"]["balance"] == 10
        assert (await gw.http.post(f"/admin/users/{user_id}/topup", json={"amount": -50},
                                   headers=admin)).status_code == 409
        assert (await gw.http.get("/admin/users/999", headers=admin)).status_code == 404
        assert (await gw.http.get("/admin/users/abc", headers=admin)).status_code == 404
        keys = (await gw.http.get(f"/admin/users/{user_id}/keys", headers=admin)).json()
        assert len(keys["data"]) == 1 and "apiKey" not in keys["data"][0]
        key_id = keys["data"][0]["keyId"]
        revoke = await gw.http.delete(f"/admin/users/{user_id}/keys/{key_id}", headers=admin)
        assert revoke.status_code == 200
        info = await gw.http.get(f"{V1}/info", headers={"TT-API-KEY": key})
        assert info.status_code == 401
        patched = await gw.http.patch(f"/admin/users/{user_id}", json={"max_queue": 3},
                                      headers=admin)
        assert patched.json()["data"]["max_queue"] == 3
        ledger = (await gw.http.get(f"/admin/users/{user_id}/ledger", headers=admin)).json()
        assert ledger["data"]["totals"]["topup"] == 10
