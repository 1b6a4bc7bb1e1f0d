"""The console without a browser: sign-in rules (passwords, keys, the admin key, the
attempt limit), sessions that cannot be forged, incidents' states, and /status.json."""

from __future__ import annotations

import re

import httpx
import pytest

from gengate.config import Settings
from gengate.console.session import SessionSigner
from gengate.testing import Gateway, serve_gateway

ADMIN = {"Authorization": "Bearer test-admin-key"}


async def _signin(gw: Gateway, http: httpx.AsyncClient, **fields: str) -> httpx.Response:
    page = await http.get(f"{gw.base_url}/console/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return await http.post(f"{gw.base_url}/console/signin",
                           data={"csrf": token.group(1), **fields})


async def test_password_key_and_admin_sign_in(settings: Settings) -> None:
    async with serve_gateway(settings) as gw, httpx.AsyncClient() as http:
        user_id, key = await gw.create_user(email="ann@example.com")
        # no password yet: refused like a wrong one
        out = await _signin(gw, http, method="password", email="ann@example.com",
                            password="whatever-it-is")
        assert out.status_code == 303 and "Wrong%20email%20or%20password" in out.headers[
            "location"]
        short = await gw.http.put(f"/admin/users/{user_id}/password",
                                  json={"password": "short"}, headers=ADMIN)
        assert short.status_code == 400 and "8 to 256" in short.json()["message"]
        put = await gw.http.put(f"/admin/users/{user_id}/password",
                                json={"password": "a long password"}, headers=ADMIN)
        assert put.status_code == 200, put.text
        out = await _signin(gw, http, method="password", email="ANN@example.com",
                            password="a long password")
        assert out.headers["location"] == "/console/home"
        cookie = out.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
        assert (await http.get(f"{gw.base_url}/console/home")).status_code == 200
        # a deactivated user's session ends at the next page
        await gw.http.patch(f"/admin/users/{user_id}", json={"active": False}, headers=ADMIN)
        gone = await http.get(f"{gw.base_url}/console/home")
        assert gone.status_code == 303 and gone.headers["location"] == "/console/signin"

        http.cookies.clear()
        await gw.http.patch(f"/admin/users/{user_id}", json={"active": True}, headers=ADMIN)
        out = await _signin(gw, http, method="key", key=key)
        assert out.headers["location"] == "/console/home"
        # an operator page is not a user's
        op = await http.get(f"{gw.base_url}/console/op/users")
        assert op.status_code == 303 and op.headers["location"].startswith("/console/signin")

        http.cookies.clear()
        limited = (await gw.client(key).post("/keys/create", json={"products": []})).json()
        out = await _signin(gw, http, method="key", key=limited["data"]["apiKey"])
        assert out.status_code == 403 and "has limits" in out.text
        out = await _signin(gw, http, method="admin", key="wrong")
        assert "Wrong%20admin%20key" in out.headers["location"]
        out = await _signin(gw, http, method="admin", key=settings.admin_key or "")
        assert out.headers["location"] == "/console/op/users"
        assert (await http.get(f"{gw.base_url}/console/op/users")).status_code == 200


async def test_sign_in_attempts_are_limited(settings: Settings) -> None:
    async with serve_gateway(settings) as gw, httpx.AsyncClient() as http:
        for _ in range(10):
            out = await _signin(gw, http, method="admin", key="guess")
            assert out.status_code == 303
        out = await _signin(gw, http, method="admin", key=settings.admin_key or "")
        assert out.status_code == 429 and int(out.headers["retry-after"]) > 0
        assert "Too many sign-in attempts" in out.text


async def test_a_sign_in_form_needs_its_token(settings: Settings) -> None:
    async with serve_gateway(settings) as gw, httpx.AsyncClient() as http:
        out = await http.post(f"{gw.base_url}/console/signin",
                              data={"csrf": "x", "method": "admin",
                                    "key": settings.admin_key or ""})
        assert out.status_code == 403
        assert "gg_console" not in out.headers.get("set-cookie", "")


def test_sessions_cannot_be_forged_or_outlive_their_time() -> None:
    signer = SessionSigner(b"secret")
    session = signer.issue(7, False, now=1000.0)
    raw = signer.dump(session)
    assert signer.load(raw, 1001.0) == session
    assert signer.load(raw, session.expires + 1) is None
    assert SessionSigner(b"other").load(raw, 1001.0) is None
    payload, _, mac = raw.rpartition(".")
    forged = SessionSigner(b"other").dump(signer.issue(1, True, 1000.0))
    assert signer.load(forged.rpartition(".")[0] + "." + mac, 1001.0) is None
    assert signer.load("garbage", 1001.0) is None and signer.load(None, 1.0) is None


async def test_incidents_move_through_their_states(settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        incidents = gw.runtime.incidents
        assert incidents is not None
        with pytest.raises(Exception, match="state: must be one of"):
            await incidents.post("incident", "x", [], "broken", "m")
        with pytest.raises(Exception, match="unknown product `nope`"):
            await incidents.post("incident", "x", ["nope"], "investigating", "m")
        with pytest.raises(Exception, match="cannot start resolved"):
            await incidents.post("maintenance", "x", [], "resolved", "m")
        made = await incidents.post("maintenance", "Database upgrade", ["midjourney"],
                                    "identified", "From 02:00 to 03:00 UTC")
        await incidents.update(made, "monitoring", "Done; watching")
        await incidents.update(made, "resolved", "All good")
        with pytest.raises(Exception, match="already resolved"):
            await incidents.update(made, "monitoring", "again")
        with pytest.raises(Exception, match="incident 999 not found"):
            await incidents.update(999, "monitoring", "x")
        body = (await gw.http.get("/status.json")).json()
        assert body["data"]["midjourney"]["status"] == 200  # the product lines, as before
        shown = body["incidents"][0]
        assert shown["kind"] == "maintenance" and shown["products"] == ["midjourney"]
        assert [u["state"] for u in shown["updates"]] == ["resolved", "monitoring",
                                                          "identified"]
        history = body["history"]["midjourney"]
        assert len(history) == 90 and history[-1]["availability"] is None


async def test_a_refused_prompt_comes_back_to_the_form(settings: Settings) -> None:
    async with serve_gateway(settings) as gw, httpx.AsyncClient() as http:
        _, key = await gw.create_user(email="pat@example.com", balance=0)
        await _signin(gw, http, method="key", key=key)
        page = await http.get(f"{gw.base_url}/console/playground")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        out = await http.post(f"{gw.base_url}/console/playground",
                              data={"csrf": token.group(1), "prompt": "a red fox",
                                    "mode": "fast"})
        assert out.status_code == 303
        back = await http.get(f"{gw.base_url}{out.headers['location']}")
        assert "a red fox</textarea>" in back.text
        assert 'role="alert"' in back.text and "balance" in back.text.lower()
        assert await gw.runtime.store.all_jobs(None, None, None, 5) == []


async def test_bad_operator_input_is_a_message_not_a_crash(settings: Settings) -> None:
    async with serve_gateway(settings) as gw, httpx.AsyncClient() as http:
        user_id, _ = await gw.create_user(email="eve@example.com", balance=5)
        await _signin(gw, http, method="admin", key=settings.admin_key or "")
        page = await http.get(f"{gw.base_url}/console/op/users")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        csrf = token.group(1)
        for amount in ("abc", "nan", "inf", "1e400", ""):
            out = await http.post(f"{gw.base_url}/console/op/users/{user_id}/topup",
                                  data={"csrf": csrf, "amount": amount})
            assert out.status_code == 303 and "error=" in out.headers["location"], amount
        missing = await http.post(f"{gw.base_url}/console/op/users/99999/topup",
                                  data={"csrf": csrf, "amount": "1"})
        assert missing.status_code == 404
        odd = await http.post(f"{gw.base_url}/console/op/users/x%00/topup",
                              data={"csrf": csrf, "amount": "1"})
        assert odd.status_code == 404
        assert (await http.get(f"{gw.base_url}/console/op/jobs?status=NOPE")).status_code == 400
        assert (await http.get(f"{gw.base_url}/console/op/jobs?user=-1")).status_code == 400
        as_json = await http.post(f"{gw.base_url}/console/op/users", json={"csrf": csrf})
        assert as_json.status_code == 303 and "takes%20forms" in as_json.headers["location"]
        assert (await gw.runtime.admin.get(user_id))["balance"] == 5
        bad = await http.post(f"{gw.base_url}/console/op/users/limits",
                              data={"csrf": csrf, "user": str(user_id), "max_queue": "-2"})
        assert "error=" in bad.headers["location"]
        saved = await http.post(f"{gw.base_url}/console/op/users/limits",
                                data={"csrf": csrf, "user": str(user_id), "max_queue": "3",
                                      "rate_per_minute": "60", "rate_per_second": ""})
        assert "limits%20saved" in saved.headers["location"]
        user = await gw.runtime.admin.get(user_id)
        assert (user["max_queue"], user["rate_per_minute"], user["rate_per_second"]) == (
            3, 60, None)
