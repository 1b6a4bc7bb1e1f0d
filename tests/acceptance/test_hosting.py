"""Hosting (users' own upstream accounts under ``/hold``) and the operator's pool
(``/admin/accounts``), end to end: a real gengate and a fake midjourney-proxy, both on real
sockets. Jobs run in the fake for a fraction of a second; tests poll with a bounded
``asyncio.timeout`` until the state they want, never sleep for a fixed time."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway
from gengate.testing.mjproxy import FakeMidjourneyProxy, FakeMjAccount

V1 = "/midjourney/v1"
HOLD = "/hold/midjourney/v1"
ADMIN = "/admin/accounts"


@pytest.fixture
def hosting(settings: Settings) -> Settings:
    """Only real accounts serve (no built-in ``local``); users may point at 127.0.0.1."""
    return settings.model_copy(update={"local_account": False, "hosting_allow": "127.0.0.1"})


@pytest.fixture
async def mj() -> AsyncIterator[FakeMidjourneyProxy]:
    async with FakeMidjourneyProxy() as fake:
        yield fake


def admin_headers(gw: Gateway, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key or gw.admin_key}"}


async def hold_add(client: httpx.AsyncClient, mj: FakeMidjourneyProxy, name: str,
                   secret: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/hold/account/add",
                                 json={"name": name, "baseUrl": mj.base_url, "secret": secret,
                                       **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SUCCESS"
    return dict(body["data"])


async def hold_list(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/hold/account/list")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def submit(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> str:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["status"] == "SUCCESS"
    return str(payload["data"]["jobId"])


async def succeed(gw: Gateway, client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    result = await gw.wait(client, job_id)
    assert result["status"] == "SUCCESS", result
    return result


async def info(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(f"{V1}/info")
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def prompts_of(account: FakeMjAccount, path: str = "/mj/submit/imagine") -> list[str]:
    return [str(body.get("prompt", "")) for p, body in account.submissions if p == path]


async def admin_accounts(gw: Gateway) -> dict[int, dict[str, Any]]:
    response = await gw.http.get(ADMIN, headers=admin_headers(gw))
    assert response.status_code == 200, response.text
    return {int(a["id"]): a for a in response.json()["data"]}


# --------------------------------------------------------------------------------- isolation


async def test_hosted_jobs_run_only_on_their_owners_account(
        hosting: Settings, mj: FakeMidjourneyProxy) -> None:
    fake_a = mj.add_account("secret-alice", core_size=5)
    fake_b = mj.add_account("secret-bob", core_size=5)
    async with serve_gateway(hosting) as gw:
        _, key_a = await gw.create_user(balance=10)
        _, key_b = await gw.create_user(balance=10)
        alice, bob = gw.client(key_a), gw.client(key_b)
        acct_a = await hold_add(alice, mj, "alice-mj", "secret-alice")
        acct_b = await hold_add(bob, mj, "bob-mj", "secret-bob", maxConcurrency=4)
        assert acct_a["status"] == "normal" and acct_a["enabled"] is True
        assert acct_a["hasCredentials"] is True and acct_a["useMode"] == 2
        assert acct_b["maxConcurrency"] == 4

        jobs_a = await asyncio.gather(*[
            submit(alice, f"{HOLD}/imagine", {"prompt": f"alice cat {i}"}) for i in range(3)])
        jobs_b = await asyncio.gather(*[
            submit(bob, f"{HOLD}/imagine", {"prompt": f"bob dog {i}"}) for i in range(4)])
        for job_id in jobs_a:
            await succeed(gw, alice, job_id)
        for job_id in jobs_b:
            await succeed(gw, bob, job_id)

        sent_a, sent_b = prompts_of(fake_a), prompts_of(fake_b)
        assert len(sent_a) == 3 and all(p.startswith("alice cat") for p in sent_a), sent_a
        assert len(sent_b) == 4 and all(p.startswith("bob dog") for p in sent_b), sent_b

        # jobs and accounts are private to their owner
        for path in (f"{V1}/fetch", f"{HOLD}/fetch"):
            other = await alice.get(path, params={"jobId": jobs_b[0]})
            assert other.status_code == 404, other.text
        mine = await alice.get(f"{HOLD}/fetch", params={"jobId": jobs_a[0]})
        assert mine.status_code == 200 and mine.json()["status"] == "SUCCESS"
        listed_a = await hold_list(alice)
        assert [a["accountId"] for a in listed_a] == [acct_a["accountId"]]
        assert listed_a[0]["name"] == "alice-mj"

        before = await hold_list(bob)
        b_id = acct_b["accountId"]
        attempts = [
            ("/hold/account/update", {"accountId": b_id, "maxConcurrency": 1, "name": "mine"}),
            ("/hold/account/disable", {"accountId": b_id}),
            ("/hold/account/enable", {"accountId": b_id}),
            ("/hold/account/delete", {"accountId": b_id}),
            ("/hold/account/events", {"accountId": b_id}),
        ]
        for path, body in attempts:
            response = await alice.post(path, json=body)
            assert response.status_code == 404, (path, response.text)
        after = await hold_list(bob)
        assert after == before
        assert after[0]["name"] == "bob-mj" and after[0]["maxConcurrency"] == 4
        assert after[0]["enabled"] is True
        # and bob's account still serves bob
        await succeed(gw, bob, await submit(bob, f"{HOLD}/imagine", {"prompt": "bob dog 9"}))
        assert len(prompts_of(fake_b)) == 5 and len(prompts_of(fake_a)) == 3


# ------------------------------------------------------------------------ no available accounts


async def test_no_available_accounts_is_a_400_that_charges_nothing(
        hosting: Settings, mj: FakeMidjourneyProxy) -> None:
    fake = mj.add_account("secret-relax")
    async with serve_gateway(hosting) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)

        async def refused(mode: str) -> None:
            before = await info(client)
            response = await client.post(f"{HOLD}/imagine",
                                         json={"prompt": "a quiet lake", "mode": mode})
            assert response.status_code == 400, response.text
            assert response.json()["status"] == "FAILED"
            assert "No available accounts" in response.json()["message"]
            after = await info(client)
            assert after["balance"] == before["balance"]
            assert after["freeze_balance"] == before["freeze_balance"]
            assert after["in_progress"] == before["in_progress"]

        await refused("fast")  # no account at all
        assert (await info(client))["balance"] == 10

        account = await hold_add(client, mj, "relaxed", "secret-relax", useMode=1)
        assert account["useMode"] == 1
        await refused("fast")
        await refused("turbo")
        relax = await submit(client, f"{HOLD}/imagine",
                             {"prompt": "a quiet lake", "mode": "relax"})
        await succeed(gw, client, relax)
        assert (await info(client))["balance"] == 9.9
        assert prompts_of(fake) and all("quiet lake" in p for p in prompts_of(fake))

        ref = {"accountId": account["accountId"]}
        disabled = await client.post("/hold/account/disable", json=ref)
        assert disabled.status_code == 200 and disabled.json()["data"]["enabled"] is False
        await refused("relax")
        await refused("fast")
        enabled = await client.post("/hold/account/enable", json=ref)
        assert enabled.status_code == 200 and enabled.json()["data"]["enabled"] is True
        again = await submit(client, f"{HOLD}/imagine",
                             {"prompt": "a quiet lake again", "mode": "relax"})
        await succeed(gw, client, again)
        assert (await info(client))["balance"] == 9.8
        assert len(prompts_of(fake)) == 2


# ------------------------------------------------------------------------------------ pricing


async def test_hosted_jobs_cost_the_hosting_price_and_stay_on_their_account(
        hosting: Settings, mj: FakeMidjourneyProxy) -> None:
    hosted_fake = mj.add_account("secret-user")
    pool_fake = mj.add_account("secret-operator")
    async with serve_gateway(hosting) as gw:
        created = await gw.http.post(ADMIN, headers=admin_headers(gw), json={
            "name": "pool-1", "baseUrl": mj.base_url, "secret": "secret-operator",
            "slots": {"fast": 3}})
        assert created.status_code == 200, created.text
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        await hold_add(client, mj, "own", "secret-user")

        grid = await submit(client, f"{HOLD}/imagine", {"prompt": "hosted heron"})
        grid_body = await succeed(gw, client, grid)
        assert grid_body["data"]["quota"] == "0.1"
        after_grid = await info(client)
        assert after_grid["balance"] == 9.9 and after_grid["freeze_balance"] == 0

        upsample = await submit(client, f"{HOLD}/action",
                                {"jobId": grid, "action": "upsample1"})
        await succeed(gw, client, upsample)
        after_action = await info(client)
        assert after_action["balance"] == 9.8 and after_action["freeze_balance"] == 0
        hosted_paths = [p for p, _ in hosted_fake.submissions]
        assert hosted_paths == ["/mj/submit/imagine", "/mj/submit/action"]

        plain = await submit(client, f"{V1}/imagine", {"prompt": "pooled pelican"})
        plain_body = await succeed(gw, client, plain)
        assert plain_body["data"]["quota"] == "2"
        after_plain = await info(client)
        assert after_plain["balance"] == 7.8 and after_plain["freeze_balance"] == 0
        assert [p for p, _ in pool_fake.submissions] == ["/mj/submit/imagine"]
        assert prompts_of(pool_fake)[0].startswith("pooled pelican")
        assert all("pelican" not in p for p in prompts_of(hosted_fake))


# ------------------------------------------------------------------------ registration checks


async def test_registration_is_validated_and_refusals_create_nothing(
        settings: Settings, hosting: Settings, mj: FakeMidjourneyProxy) -> None:
    # without GENGATE_HOSTING_ALLOW a private address is refused
    strict = settings.model_copy(update={"local_account": False,
                                         "data_dir": settings.data_dir.parent / "strict"})
    assert not strict.hosting_allow
    async with serve_gateway(strict) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        refused = await client.post("/hold/account/add", json={
            "name": "local-mj", "baseUrl": mj.base_url, "secret": "s"})
        assert refused.status_code == 400, refused.text
        assert refused.json()["status"] == "FAILED"
        assert "baseUrl" in refused.json()["message"]
        assert await hold_list(client) == []

    async with serve_gateway(hosting) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        good = {"name": "mine", "baseUrl": mj.base_url, "secret": "s"}
        bad_bodies: list[dict[str, Any]] = [
            {**good, "useMode": 4},
            {**good, "maxConcurrency": 0},
            {**good, "maxConcurrency": 51},
            {**good, "provider": "local"},
            {"name": "tt", "provider": "ttapi", "baseUrl": mj.base_url},
            {**good, "name": ""},
            {"name": "nourl", "secret": "s"},
            {**good, "baseUrl": "ftp://127.0.0.1/x"},
        ]
        for body in bad_bodies:
            response = await client.post("/hold/account/add", json=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["status"] == "FAILED"
        broken = await client.post("/hold/account/add", content=b'{"name": "x",',
                                   headers={"Content-Type": "application/json"})
        assert broken.status_code == 400, broken.text
        assert await hold_list(client) == []

        first = await client.post("/hold/account/add", json=good)
        assert first.status_code == 200, first.text
        duplicate = await client.post("/hold/account/add", json={**good, "secret": "t"})
        assert duplicate.status_code == 409, duplicate.text
        listed = await hold_list(client)
        assert [a["name"] for a in listed] == ["mine"]
        # nothing leaked into the operator's pool either
        assert await admin_accounts(gw) == {}


# ---------------------------------------------------------------------------------- secrets


async def test_credentials_never_leak(hosting: Settings, mj: FakeMidjourneyProxy,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hosted_secret = f"mjsecret-{uuid.uuid4().hex}"
    pool_secret = f"mjsecret-{uuid.uuid4().hex}"
    new_secret = f"mjsecret-{uuid.uuid4().hex}"
    secrets = (hosted_secret, pool_secret, new_secret)
    mj.add_account(hosted_secret)
    mj.add_account(new_secret)
    mj.add_account(pool_secret)
    bodies: list[tuple[str, str]] = []

    def seen(what: str, response: httpx.Response) -> httpx.Response:
        bodies.append((what, response.text))
        return response

    async with serve_gateway(hosting) as gw:
        admin = admin_headers(gw)
        created = seen("admin create", await gw.http.post(ADMIN, headers=admin, json={
            "name": "pool-1", "baseUrl": mj.base_url, "secret": pool_secret}))
        assert created.status_code == 200 and created.json()["data"]["hasCredentials"] is True
        pool_id = created.json()["data"]["id"]
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        added = seen("add", await client.post("/hold/account/add", json={
            "name": "own", "baseUrl": mj.base_url, "secret": hosted_secret}))
        assert added.status_code == 200 and added.json()["data"]["hasCredentials"] is True
        account_id = added.json()["data"]["accountId"]

        hosted = await submit(client, f"{HOLD}/imagine", {"prompt": "secret garden"})
        pooled = await submit(client, f"{V1}/imagine", {"prompt": "public garden"})
        for job_id in (hosted, pooled):
            await succeed(gw, client, job_id)
            seen("fetch", await client.get(f"{HOLD}/fetch", params={"jobId": job_id}))
            seen("fetch", await client.get(f"{V1}/fetch", params={"jobId": job_id}))
        seen("fetch-list", await client.get(f"{V1}/fetch-list"))
        seen("list", await client.get("/hold/account/list"))
        ref = {"accountId": account_id}
        updated = seen("update", await client.post("/hold/account/update", json={
            **ref, "secret": new_secret, "maxConcurrency": 2}))
        assert updated.status_code == 200 and updated.json()["data"]["maxConcurrency"] == 2
        # the new secret is really used
        await succeed(gw, client, await submit(client, f"{HOLD}/imagine", {"prompt": "rose"}))
        seen("events", await client.post("/hold/account/events", json=ref))
        seen("disable", await client.post("/hold/account/disable", json=ref))
        seen("enable", await client.post("/hold/account/enable", json=ref))
        seen("admin list", await gw.http.get(ADMIN, headers=admin))
        for account in (pool_id, account_id):
            got = seen("admin get", await gw.http.get(f"{ADMIN}/{account}", headers=admin))
            # the pool's account is the operator's; whether the admin may open a user's
            # hosted account by id is not part of the contract, only that no secret shows
            assert got.status_code == 200 if account == pool_id else got.status_code in (
                200, 404), got.text
            seen("admin events", await gw.http.get(f"{ADMIN}/{account}/events",
                                                   headers=admin))
        patched = seen("admin patch", await gw.http.patch(
            f"{ADMIN}/{pool_id}", headers=admin, json={"weight": 2}))
        assert patched.status_code == 200, patched.text
        for page in ("/status.json", "/metrics", "/openapi.json", "/midjourney/status"):
            response = seen(page, await gw.http.get(page))
            assert response.status_code == 200, (page, response.status_code)
        db_path = hosting.data_dir / "gengate.db"
        with sqlite3.connect(db_path) as db:
            stored = [str(c) for (c,) in db.execute(
                "SELECT credentials FROM upstream_accounts WHERE credentials IS NOT NULL")]
            dumped = "\n".join(db.iterdump())

    assert len(stored) == 2 and all(stored)
    # the gateway's own logs were captured (at DEBUG), so their absence of secrets means something
    assert any(r.name.startswith("gengate") for r in caplog.records)
    for secret in secrets:
        for what, text in bodies:
            assert secret not in text, f"{what} shows a secret"
        assert secret not in caplog.text
        assert all(secret not in c for c in stored)
        assert secret not in dumped
    # each secret went to the upstream as mj-api-secret, so it was really used
    sent = {secret for _, path, secret in mj.requests if path.startswith("/mj/submit/")}
    assert sent == set(secrets)


# ----------------------------------------------------------------------- the operator's pool


async def test_admin_accounts_route_within_slots(hosting: Settings,
                                                 mj: FakeMidjourneyProxy) -> None:
    fake_1 = mj.add_account("secret-one", core_size=10, queue_size=20)
    fake_2 = mj.add_account("secret-two", core_size=10, queue_size=20)
    async with serve_gateway(hosting) as gw:
        admin = admin_headers(gw)
        ids = []
        for name, secret, fast in (("one", "secret-one", 2), ("two", "secret-two", 3)):
            response = await gw.http.post(ADMIN, headers=admin, json={
                "name": name, "baseUrl": mj.base_url, "secret": secret,
                "slots": {"fast": fast}})
            assert response.status_code == 200, response.text
            ids.append(response.json()["data"]["id"])
        one, two = ids
        listed = await admin_accounts(gw)
        assert set(listed) == {one, two}
        assert listed[one]["slots"] == {"fast": 2} and listed[two]["slots"] == {"fast": 3}
        for view in listed.values():
            assert view["inUse"] == {"fast": 0} and view["state"] == "healthy"
            assert view["hasCredentials"] is True and view["enabled"] is True
            assert "secret" not in view

        fake_1.slow(1.0)
        fake_2.slow(1.0)
        _, key = await gw.create_user(balance=100, max_queue=20)
        client = gw.client(key)
        jobs = await asyncio.gather(*[
            submit(client, f"{V1}/imagine", {"prompt": f"busy bee {i}"}) for i in range(8)])
        peak = {one: 0, two: 0}
        async with asyncio.timeout(30):
            while True:
                views = await admin_accounts(gw)
                for account_id in peak:
                    used = views[account_id]["inUse"]["fast"]
                    assert used <= views[account_id]["slots"]["fast"], views[account_id]
                    peak[account_id] = max(peak[account_id], used)
                if peak[one] == 2 and peak[two] == 3:
                    break
                await asyncio.sleep(0.02)
        for job_id in jobs:
            await succeed(gw, client, job_id)
        assert fake_1.max_running <= 2 and fake_2.max_running <= 3
        assert len(fake_1.submissions) + len(fake_2.submissions) == 8
        assert all(v["inUse"] == {"fast": 0} for v in (await admin_accounts(gw)).values())

        # a disabled account takes no new jobs
        fake_1.slow(0.2)
        fake_2.slow(0.2)
        off = await gw.http.patch(f"{ADMIN}/{one}", headers=admin, json={"enabled": False})
        assert off.status_code == 200 and off.json()["data"]["enabled"] is False
        before_1, before_2 = len(fake_1.submissions), len(fake_2.submissions)
        more = await asyncio.gather(*[
            submit(client, f"{V1}/imagine", {"prompt": f"lone wolf {i}"}) for i in range(4)])
        for job_id in more:
            await succeed(gw, client, job_id)
        assert len(fake_1.submissions) == before_1
        assert len(fake_2.submissions) == before_2 + 4

        # delete removes it from the list (and its page)
        gone = await gw.http.delete(f"{ADMIN}/{one}", headers=admin)
        assert gone.status_code == 200, gone.text
        assert set(await admin_accounts(gw)) == {two}
        assert (await gw.http.get(f"{ADMIN}/{one}", headers=admin)).status_code == 404

        # errors
        wrong = await gw.http.get(ADMIN, headers=admin_headers(gw, "not-the-key"))
        assert wrong.status_code == 401
        wrong_create = await gw.http.post(ADMIN, headers=admin_headers(gw, "nope"), json={
            "name": "three", "baseUrl": mj.base_url, "secret": "x"})
        assert wrong_create.status_code == 401
        missing = await gw.http.patch(f"{ADMIN}/999999", headers=admin, json={"weight": 2})
        assert missing.status_code == 404, missing.text
        for slots in ({"warp": 1}, {"fast": -1}, {"fast": "many"}):
            bad = await gw.http.post(ADMIN, headers=admin, json={
                "name": "bad", "baseUrl": mj.base_url, "secret": "x", "slots": slots})
            assert bad.status_code == 400, (slots, bad.text)
            bad_patch = await gw.http.patch(f"{ADMIN}/{two}", headers=admin,
                                            json={"slots": slots})
            assert bad_patch.status_code == 400, (slots, bad_patch.text)
        final = await admin_accounts(gw)
        assert set(final) == {two} and final[two]["slots"] == {"fast": 3}


# ------------------------------------------------------------------- review regressions

async def test_null_and_out_of_range_ids_are_4xx(hosting: Settings,
                                                 mj: FakeMidjourneyProxy) -> None:
    mj.add_account("secret-null")
    async with serve_gateway(hosting) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        mine = await hold_add(client, mj, "mine", "secret-null")
        created = await gw.http.post(ADMIN, headers=admin_headers(gw), json={
            "name": "pool", "baseUrl": mj.base_url, "secret": "secret-null"})
        pool_id = created.json()["data"]["id"]
        for field in ("name", "priority", "weight", "enabled", "minGap", "slots"):
            patched = await gw.http.patch(f"{ADMIN}/{pool_id}", headers=admin_headers(gw),
                                          json={field: None})
            assert patched.status_code == 400, (field, patched.text)
            assert patched.json()["message"] == f"{field}: must not be null"
        for field in ("name", "enabled", "baseUrl"):
            updated = await client.post("/hold/account/update",
                                        json={"accountId": mine["accountId"], field: None})
            assert updated.status_code == 400, (field, updated.text)
        for account_id in (2**31, 2**63, -1, 0):
            response = await client.post("/hold/account/disable",
                                         json={"accountId": account_id})
            assert response.status_code == 400, response.text
        for raw in ("99999999999999999999", "²", "1e3"):
            response = await gw.http.get(f"{ADMIN}/{raw}", headers=admin_headers(gw))
            assert response.status_code == 404, response.text
        # the operator's routes do not reach users' own accounts
        hosted = await gw.http.get(f"{ADMIN}/{mine['accountId']}", headers=admin_headers(gw))
        assert hosted.status_code == 404
        assert (await hold_list(client))[0]["enabled"] is True


async def test_a_hosted_upstreams_result_must_pass_the_address_rules(
        settings: Settings, mj: FakeMidjourneyProxy) -> None:
    # the account is allowed by name; the result link it returns points at 127.0.0.1,
    # which is not allowed: the worker must not fetch it
    settings = settings.model_copy(update={"local_account": False,
                                           "hosting_allow": "localhost"})
    mj.add_account("secret-ssrf", duration=0.05)
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        response = await client.post("/hold/account/add", json={
            "name": "mine", "baseUrl": mj.base_url.replace("127.0.0.1", "localhost"),
            "secret": "secret-ssrf"})
        assert response.status_code == 200, response.text
        job_id = await submit(client, f"{HOLD}/imagine", {"prompt": "a quiet street"})
        body = await gw.wait(client, job_id)
        assert body["status"] == "FAILED"
        assert body["message"].startswith("[Bad response] the upstream's result")
        assert "GENGATE_HOSTING_ALLOW" in body["message"]
        assert not [p for _, p, _ in mj.requests if p.startswith("/mj/image/")]
        assert (await info(client))["balance"] == 10


async def test_queued_hosted_jobs_do_not_block_the_operator_pool(
        hosting: Settings, mj: FakeMidjourneyProxy) -> None:
    slow = mj.add_account("secret-slow", core_size=1, duration=30)
    mj.add_account("secret-pool", duration=0.05)
    async with serve_gateway(hosting) as gw:
        await gw.http.post(ADMIN, headers=admin_headers(gw), json={
            "name": "pool", "baseUrl": mj.base_url, "secret": "secret-pool",
            "slots": {"fast": 3}})
        _, hoarder = await gw.create_user(balance=100, max_queue=100)
        hoarding = gw.client(hoarder)
        await hold_add(hoarding, mj, "one-slot", "secret-slow", maxConcurrency=1)
        for i in range(80):
            await submit(hoarding, f"{HOLD}/imagine", {"prompt": f"wait {i}"})
        async with asyncio.timeout(10):
            while not prompts_of(slow):
                await asyncio.sleep(0.02)
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        job_id = await submit(client, f"{V1}/imagine", {"prompt": "not stuck behind them"})
        await succeed(gw, client, job_id)
        assert len(prompts_of(slow)) == 1
