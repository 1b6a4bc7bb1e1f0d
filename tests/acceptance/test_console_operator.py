"""The operator's new console pages without a browser: prices (set on one node, used by
another's next admission, reset), the ledger across users with filters, any user's keys
(limits, revoke), "check now" on an account (through the health check the background pass
runs), the same through /admin, and the sign-in limit shared by two nodes on one database
(and through Redis when it is configured)."""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from gengate.config import Settings
from gengate.quota import from_milli
from gengate.testing import Gateway, free_port, serve_gateway
from tests.acceptance.test_console import _signin
from tests.acceptance.test_console_live import _csrf, _signed_in
from tests.conftest import live_redis_url

ADMIN = {"Authorization": "Bearer test-admin-key"}


def _message(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:500]
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return (query.get("error") or query.get("ok") or [""])[0]


async def _operator(gw: Gateway, http: httpx.AsyncClient, settings: Settings) -> str:
    out = await _signin(gw, http, method="admin", key=settings.admin_key or "")
    assert out.headers["location"] == "/console/op/users"
    return await _csrf(http, f"{gw.base_url}/console/op/prices")


async def test_prices_set_on_one_node_price_the_next_job_on_another(
        settings: Settings) -> None:
    async with serve_gateway(settings) as one, serve_gateway(settings) as two, \
            httpx.AsyncClient() as http:
        csrf = await _operator(one, http, settings)
        page = await http.get(f"{one.base_url}/console/op/prices")
        assert "<code>flux:generate:flux1-dev</code>" in page.text and "built-in" in page.text
        out = await http.post(f"{one.base_url}/console/op/prices", data={
            "csrf": csrf, "tier": "main", "key": "flux:generate:flux1-dev", "price": "5.5"})
        assert _message(out) == "flux:generate:flux1-dev (main) costs 5.5 now"
        # the other node reloads at its next version check (a poll, or NOTIFY)
        await two.runtime.access.check_version()
        _, key = await two.create_user(balance=100)
        made = await two.client(key).post("/flux/generate", json={
            "prompt": "a kite", "mode": "flux1-dev"})
        job = await two.runtime.jobs.fetch(
            int((await two.runtime.access.principal(key)).user_id),
            made.json()["data"]["jobId"])
        assert from_milli(job.quota) == 5.5
        listed = (await one.http.get("/admin/prices", headers=ADMIN)).json()["data"]["main"]
        entry = next(e for e in listed if e["key"] == "flux:generate:flux1-dev")
        assert entry == {"key": "flux:generate:flux1-dev", "price": 5.5, "source": "operator",
                         "base": 1}
        page = await http.get(f"{one.base_url}/console/op/prices")
        assert "was 1" in page.text

        # clear errors, nothing saved
        for data, message in (
                ({"key": "flux:generate", "price": "1"}, "is not product:action:mode"),
                ({"key": "nope:*:*", "price": "1"}, "unknown product `nope`"),
                ({"key": "flux:*:*", "price": "-1"}, "price: Input should be greater than"),
                ({"key": "flux:*:*", "price": "abc"}, "price: `abc` is not a number"),
                ({"key": "flux:*:*", "price": "1", "tier": "gold"}, "tier: Input should be")):
            out = await http.post(f"{one.base_url}/console/op/prices",
                                  data={"csrf": csrf, "tier": "main", **data})
            assert message in _message(out), (data, _message(out))
        forged = await http.post(f"{one.base_url}/console/op/prices", data={
            "csrf": "forged", "tier": "main", "key": "flux:*:*", "price": "0"})
        assert forged.status_code == 403
        assert {e["key"] for e in (await one.http.get("/admin/prices", headers=ADMIN)).json()[
            "data"]["main"] if e["source"] == "operator"} == {"flux:generate:flux1-dev"}

        out = await http.post(f"{one.base_url}/console/op/prices/reset", data={
            "csrf": csrf, "tier": "main", "key": "flux:generate:flux1-dev"})
        assert "removed" in _message(out)
        missing = await http.post(f"{one.base_url}/console/op/prices/reset", data={
            "csrf": csrf, "tier": "main", "key": "flux:generate:flux1-dev"})
        assert missing.status_code == 404
        await two.runtime.access.check_version()
        assert two.runtime.jobs.prices.price_milli("flux", "generate", "flux1-dev") == 1000

        # the admin API: PUT, DELETE, and its refusals
        put = await one.http.put("/admin/prices", headers=ADMIN, json={
            "tier": "hosting", "key": "midjourney:*:*", "price": 0.3})
        assert put.status_code == 200 and put.json()["data"]["price"] == 0.3
        assert one.runtime.jobs.hosting_prices.price_milli("midjourney", "imagine",
                                                           "fast") == 300
        bad = await one.http.put("/admin/prices", headers=ADMIN,
                                 json={"key": "x:y:z", "price": 1})
        assert bad.status_code == 400 and "unknown product `x`" in bad.json()["message"]
        gone = await one.http.delete("/admin/prices", headers=ADMIN,
                                     params={"tier": "hosting", "key": "midjourney:*:*"})
        assert gone.status_code == 200
        again = await one.http.delete("/admin/prices", headers=ADMIN,
                                      params={"tier": "hosting", "key": "midjourney:*:*"})
        assert again.status_code == 404


async def test_ledger_keys_and_check_now(settings: Settings) -> None:
    async with serve_gateway(settings) as gw, httpx.AsyncClient() as http, \
            httpx.AsyncClient() as user_http:
        ann, ann_key = await gw.create_user(balance=20, email="ann@example.com")
        bob, _ = await gw.create_user(balance=7, email="bob@example.com")
        made = await gw.client(ann_key).post("/midjourney/v1/imagine", json={"prompt": "a cat"})
        await gw.wait(gw.client(ann_key), made.json()["data"]["jobId"])
        csrf = await _operator(gw, http, settings)

        # the ledger across users, filtered
        page = await http.get(f"{gw.base_url}/console/op/ledger")
        assert "ann@example.com" in page.text and "bob@example.com" in page.text
        assert re.search(r'id="total-topup">27<', page.text)
        mine = await http.get(f"{gw.base_url}/console/op/ledger?user={ann}&kind=settle")
        assert "bob@example.com" not in mine.text and mine.text.count('class="kind-settle"') == 1
        assert re.search(r'id="total-settle">-?2<', mine.text)
        for query, message in (("kind=gift", "kind: use"), ("from=2026-13-01", "is not a date"),
                               ("user=x", "user: must be a user id"),
                               ("user=999", "user: no user 999"), ("page=0", "page: must be")):
            bad = await http.get(f"{gw.base_url}/console/op/ledger?{query}")
            assert bad.status_code == 400 and message in bad.text, query
        empty = await http.get(f"{gw.base_url}/console/op/ledger?from=2020-01-01&to=2020-01-02")
        assert "No ledger rows match." in empty.text

        # any user's keys: limits, then revoke (the key stops working)
        keys = (await gw.http.get(f"/admin/users/{ann}/keys", headers=ADMIN)).json()["data"]
        key_id = keys[0]["keyId"]
        page = await http.get(f"{gw.base_url}/console/op/keys?user={ann}")
        assert f'id="key-{key_id}"' in page.text
        out = await http.post(f"{gw.base_url}/console/op/keys/{ann}/{key_id}/limits", data={
            "csrf": csrf, "cap_day": "5", "rate_per_minute": "30", "limit_products": "1",
            "product_flux": "1"})
        assert _message(out) == f"Key {key_id}: limits saved"
        got = (await gw.http.get(f"/admin/users/{ann}/keys/{key_id}", headers=ADMIN)).json()
        assert (got["data"]["capDay"], got["data"]["ratePerMinute"], got["data"]["products"]) \
            == (5, 30, ["flux"])
        bad = await http.post(f"{gw.base_url}/console/op/keys/{ann}/{key_id}/limits",
                              data={"csrf": csrf, "cap_day": "lots"})
        assert "cap_day: `lots` is not a number" in _message(bad)
        # a key under another user's id is not found; nothing is revoked
        wrong = await http.post(f"{gw.base_url}/console/op/keys/{bob}/{key_id}/revoke",
                                data={"csrf": csrf})
        assert wrong.status_code == 404
        forged = await http.post(f"{gw.base_url}/console/op/keys/{ann}/{key_id}/revoke",
                                 data={"csrf": "forged"})
        assert forged.status_code == 403
        # limited to flux now: 403 on Midjourney, but the key itself is still good
        assert (await gw.client(ann_key).get("/midjourney/v1/info")).status_code == 403
        out = await http.post(f"{gw.base_url}/console/op/keys/{ann}/{key_id}/revoke",
                              data={"csrf": csrf})
        assert _message(out) == f"Key {key_id} revoked"
        assert (await gw.client(ann_key).get("/midjourney/v1/info")).status_code == 401

        # check now: the local account answers; one whose upstream is gone fails its check
        accounts = await gw.runtime.pool.list()
        local = accounts[0]["id"]
        out = await http.post(f"{gw.base_url}/console/op/accounts/{local}/check",
                              data={"csrf": csrf})
        assert _message(out) == "Account local answered its check: healthy"
        dead = await gw.runtime.pool.create({
            "name": "gone", "provider": "midjourney_proxy",
            "baseUrl": f"http://127.0.0.1:{free_port()}", "slots": {"fast": 1}})
        out = await http.post(f"{gw.base_url}/console/op/accounts/{dead['id']}/check",
                              data={"csrf": csrf})
        message = _message(out)
        assert message.startswith("Account gone failed its check: ") and "(now " in message
        assert (await gw.runtime.pool.get(dead["id"]))["stateReason"]
        api = await gw.http.post(f"/admin/accounts/{local}/check", headers=ADMIN)
        assert api.status_code == 200 and api.json()["data"]["ok"] is True
        api = await gw.http.post(f"/admin/accounts/{dead['id']}/check", headers=ADMIN)
        assert api.json()["data"]["ok"] is False and api.json()["data"]["message"]
        assert (await http.post(f"{gw.base_url}/console/op/accounts/999/check",
                                data={"csrf": csrf})).status_code == 404
        assert (await gw.http.post("/admin/accounts/999/check", headers=ADMIN)
                ).status_code == 404

        # a user's session reaches none of it
        await _signed_in(gw, user_http)
        for path in ("/console/op/prices", "/console/op/ledger", "/console/op/keys"):
            answer = await user_http.get(f"{gw.base_url}{path}")
            assert answer.status_code == 303 and "/console/signin" in answer.headers[
                "location"], path


async def _attempts(gw: Gateway, http: httpx.AsyncClient, address: str, n: int) -> list[int]:
    codes = []
    for _ in range(n):
        page = await http.get(f"{gw.base_url}/console/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        out = await http.post(f"{gw.base_url}/console/signin",
                              data={"csrf": token.group(1), "method": "admin", "key": "guess"},
                              headers={"X-Forwarded-For": address})
        codes.append(out.status_code)
    return codes


async def _two_nodes_share_the_limit(shared: Settings) -> list[int]:
    address = f"203.0.113.{secrets.randbelow(250) + 1}, 198.51.100.{secrets.randbelow(250)}"
    client = address.split(",")[-1].strip()
    async with serve_gateway(shared) as one, serve_gateway(shared) as two, \
            httpx.AsyncClient() as http:
        codes = await _attempts(one, http, client, 6) + await _attempts(two, http, client, 4)
        assert codes == [303] * 10
        refused = await _attempts(one, http, client, 1) + await _attempts(two, http, client, 1)
        assert refused == [429, 429]
        # another address is not held up
        assert await _attempts(two, http, "198.51.100.251", 1) == [303]
        return refused


async def test_two_nodes_on_one_database_share_the_sign_in_limit(settings: Settings) -> None:
    shared = settings.model_copy(update={"trusted_proxies": "127.0.0.1/32"})
    await _two_nodes_share_the_limit(shared)


async def test_two_nodes_on_postgresql_share_the_sign_in_limit(settings: Settings,
                                                              pg_url: str) -> None:
    shared = settings.model_copy(update={"trusted_proxies": "127.0.0.1/32",
                                         "database_url": pg_url})
    await _two_nodes_share_the_limit(shared)


async def test_two_nodes_share_the_sign_in_limit_through_redis(settings: Settings) -> None:
    url = await live_redis_url()
    shared = settings.model_copy(update={"trusted_proxies": "127.0.0.1/32", "redis_url": url})
    await _two_nodes_share_the_limit(shared)
