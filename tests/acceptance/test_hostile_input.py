"""Input an attacker would try: out-of-range numbers, bodies of the wrong kind or size, and
a crash that must not cost the client its connection. Each gets a 4xx in the contract's
envelope (or a whole 500), never a wrong answer or stored damage."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator

import orjson
import pytest

from gengate.config import Settings
from gengate.store.llmrows import UsageRow
from gengate.testing import Gateway, serve_gateway

from ..conftest import ADMIN_KEY

V1 = "/midjourney/v1"
HUGE = "9223372036854775807"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[Gateway]:
    async with serve_gateway(settings) as g:
        yield g


@pytest.mark.parametrize("path", [f"{V1}/fetch-list", f"/hold{V1}/fetch-list",
                                  "/webhooks/deliveries"])
async def test_a_huge_page_is_refused(gw: Gateway, path: str) -> None:
    _, key = await gw.create_user()
    client = gw.client(key)
    for response in (await client.get(path, params={"page": HUGE}),
                     await client.post(path, json={"page": int(HUGE)})):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["status"] == "FAILED" and body["message"].startswith("page:")
    assert (await client.get(path, params={"page": 1_000_000})).status_code == 200


async def test_usage_pages_and_limits(gw: Gateway) -> None:
    user_id, key = await gw.create_user(balance=100)
    client = gw.client(key)
    store, now = gw.runtime.store, time.time()
    ids = [f"llm_{i}" for i in range(5)]
    assert await store.llm_hold_many([(user_id, i, 10, None) for i in ids], now) == [None] * 5
    await store.llm_settle_many([
        (UsageRow(i, user_id, "m", "a", 1, 1, 0, 0, 10, "ok", now + n, 1), 10)
        for n, i in enumerate(ids)], now)
    newest_first = ids[::-1]
    seen = []
    for page in (1, 2, 3):
        response = await client.get("/v1/usage", params={"page": page, "limit": 2})
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [row["id"] for row in body["data"]]
        assert body["has_more"] is (page < 3)
    assert seen == newest_first  # no row skipped between pages
    for params in ({"limit": -1}, {"limit": 0}, {"limit": 501}, {"page": 0},
                   {"page": HUGE}, {"page": "x"}, {"limit": "1e3"}):
        response = await client.get("/v1/usage", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["message"].split(":")[0] in params


async def test_top_ups_stay_exact_integers(gw: Gateway) -> None:
    user_id, _ = await gw.create_user(balance=0)
    url = f"/admin/users/{user_id}/topup"
    for amount in (1e16, -1e16, "inf", "nan", 1e300):
        response = await gw.http.post(url, json={"amount": amount}, headers=ADMIN)
        assert response.status_code == 400, (amount, response.text)
        assert response.json()["message"].startswith("amount:")
    tiny = await gw.http.post(url, json={"amount": 0.0001}, headers=ADMIN)
    assert tiny.status_code == 400 and "0.001" in tiny.json()["message"]
    big = await gw.http.post(url, json={"amount": 9e11}, headers=ADMIN)
    assert big.status_code == 200 and big.json()["data"]["balance"] == 900_000_000_000
    again = await gw.http.post(url, json={"amount": 9e11}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["message"].startswith("amount:")
    ledger = await gw.http.get(f"/admin/users/{user_id}/ledger", headers=ADMIN)
    assert ledger.status_code == 200
    assert ledger.json()["data"]["user"]["balance"] == 900_000_000_000
    too_rich = await gw.http.post("/admin/users", headers=ADMIN,
                                  json={"email": "rich@example.com", "balance": 1e16})
    assert too_rich.status_code == 400 and too_rich.json()["message"].startswith("balance:")


@pytest.mark.parametrize(("method", "path"), [
    ("POST", f"{V1}/info"), ("POST", "/hold/account/list"),
    ("POST", "/webhooks/secret/rotate"),
])
async def test_bodies_of_the_wrong_type_get_415(gw: Gateway, method: str, path: str) -> None:
    _, key = await gw.create_user()
    client = gw.client(key)
    secret = (await client.get("/webhooks/secret")).json()["data"]["secret"]
    wrong = await client.request(method, path, content=b"hello",
                                 headers={"content-type": "text/plain"})
    assert wrong.status_code == 415, wrong.text
    assert wrong.json()["status"] == "FAILED"
    not_object = await client.request(method, path, json=[1, 2])
    assert not_object.status_code == 400
    # the refused rotate changed nothing; an empty body or a JSON object still works
    assert (await client.get("/webhooks/secret")).json()["data"]["secret"] == secret
    assert (await client.request(method, path)).status_code == 200
    assert (await client.request(method, path, json={})).status_code == 200


async def test_admin_bodies_are_bounded(gw: Gateway) -> None:
    user_id, _ = await gw.create_user(balance=0)
    body = orjson.dumps({"amount": 1, "note": "n" * 200_000})
    response = await gw.http.post(f"/admin/users/{user_id}/topup", content=body,
                                  headers={**ADMIN, "content-type": "application/json"})
    assert response.status_code == 413 and response.json()["status"] == "FAILED"

    # no Content-Length: the limit holds while the body streams in
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * 4096

    streamed = await gw.http.post(f"/admin/users/{user_id}/topup", content=chunks(),
                                  headers={**ADMIN, "content-type": "application/json"})
    assert streamed.status_code == 413
    user = (await gw.http.get(f"/admin/users/{user_id}", headers=ADMIN)).json()["data"]
    assert user["balance"] == 0


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    path: str) -> tuple[int, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: gengate\r\nAuthorization: Bearer {ADMIN_KEY}"
                 "\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return status, await reader.readexactly(length)


async def test_a_crash_answers_500_and_keeps_the_connection(settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        await gw.create_user()
        # a real failure underneath: the users table is gone (as on a broken database)
        with sqlite3.connect(settings.data_dir / "gengate.db") as db:
            db.execute("ALTER TABLE users RENAME TO users_gone")
        host, port = gw.base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            status, body = await _exchange(reader, writer, "/admin/users")
            assert status == 500
            assert orjson.loads(body) == {"status": "FAILED", "data": None,
                                          "message": "TTAPI service exception"}
            status, body = await _exchange(reader, writer, "/healthz")  # same connection
            assert status == 200 and orjson.loads(body)["status"] == "SUCCESS"
        finally:
            writer.close()
            await writer.wait_closed()


async def test_wrong_admin_keys_are_rate_limited(settings: Settings) -> None:
    async with serve_gateway(settings.model_copy(
            update={"admin_failures_per_minute": 3})) as gw:
        for _ in range(3):
            wrong = await gw.http.get("/admin/users", headers={"Authorization": "Bearer no"})
            assert wrong.status_code == 401
        limited = await gw.http.get("/admin/users", headers={"Authorization": "Bearer no"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "failed admin sign-ins" in limited.json()["message"]
        # the address is held off for now, even with the right key
        assert (await gw.http.get("/admin/users", headers=ADMIN)).status_code == 429


@pytest.mark.parametrize("host", ["[2002:7f00:1::]:9", "[64:ff9b::a9fe:a9fe]", "8.8.8.8:0"])
async def test_user_given_urls_cannot_reach_inside(gw: Gateway, host: str) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    hook = await client.post(f"{V1}/imagine", json={"prompt": "cat",
                                                    "hookUrl": f"http://{host}/hook"})
    assert hook.status_code == 400 and hook.json()["message"].startswith("hookUrl:")
    described = await client.post(f"{V1}/describe", json={"url": f"http://{host}/a.png"})
    assert described.status_code == 400 and described.json()["message"].startswith("url:")
    hosted = await client.post("/hold/account/add", json={
        "name": "mine", "baseUrl": f"http://{host}", "secret": "s"})
    assert hosted.status_code == 400 and "baseUrl" in hosted.json()["message"]
    info = (await client.get(f"{V1}/info")).json()["data"]
    assert info["balance"] == 10 and info["freeze_balance"] == 0


@pytest.mark.parametrize(("path", "body", "field"), [
    (f"{V1}/imagine", {"prompt": ""}, "prompt"),
    (f"{V1}/imagine", {"prompt": " \t "}, "prompt"),
    (f"{V1}/promptCheck", {"prompt": ""}, "prompt"),
    (f"{V1}/action", {"jobId": "", "action": "upsample1"}, "jobId"),
    (f"{V1}/action", {"jobId": "x", "action": ""}, "action"),
    (f"{V1}/seed", {"jobId": ""}, "jobId"),
    ("/hold/account/add", {"name": "a", "baseUrl": "", "secret": "s"}, "baseUrl"),
])
async def test_empty_strings_the_document_forbids_say_so(gw: Gateway, path: str,
                                                         body: dict[str, str],
                                                         field: str) -> None:
    _, key = await gw.create_user(balance=10)
    response = await gw.client(key).post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == f"{field}: must not be empty"
