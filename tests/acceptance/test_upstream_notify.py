"""Upstream notifications: a midjourney-proxy given gengate's ``notifyHook`` calls it when a
task ends, and the job ends then, not at the next round of polling (the accounts here poll
every 60 s, longer than any test waits). The call is a hint: gengate asks the upstream
before it believes it, a wrong token is an unknown path, and on PostgreSQL the call may
reach a node whose worker does not follow the task. And a job that sleeps through rounds
that bring it nothing new still stops as soon as its lease is lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from gengate.config import Settings
from gengate.runtime import Runtime
from gengate.testing import Gateway, serve_gateway
from gengate.testing.mjproxy import NOVICEZK, TRUEAI, FakeMidjourneyProxy, FakeMjAccount

V1 = "/midjourney/v1"
#: the accounts' own polling: no round comes while a test waits
ROUND = 60.0
#: how long a notified job may take to end (well under one round)
NOTIFIED = 20.0


def _settings(settings: Settings, **extra: Any) -> Settings:
    return settings.model_copy(update={"local_account": False, **extra})


async def _account(gw: Gateway, mj: FakeMidjourneyProxy, secret: str) -> int:
    body = {"name": secret, "provider": "midjourney_proxy", "baseUrl": mj.base_url,
            "secret": secret, "slots": {"fast": 3}, "pollInterval": ROUND}
    response = await gw.http.post("/admin/accounts", json=body,
                                  headers={"Authorization": f"Bearer {gw.admin_key}"})
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["id"])


async def _imagine(gw: Gateway, key: str, prompt: str) -> str:
    response = await gw.client(key).post(f"{V1}/imagine", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["jobId"])


async def _until(check: Any, what: str, timeout: float = NOTIFIED) -> Any:
    """``check()``'s first true answer, asked every 20 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check() if asyncio.iscoroutinefunction(check) else check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


def _submitted(account: FakeMjAccount) -> list[str]:
    """The upstream task ids the account started."""
    return list(account.tasks)


async def _running(gw: Gateway, mj: FakeMidjourneyProxy, account: FakeMjAccount,
                   prompt: str) -> tuple[int, str, str, str]:
    """An account, a user and one job of theirs running upstream: (account id, key, job
    id, upstream task id)."""
    account_id = await _account(gw, mj, "secret-a")
    _, key = await gw.create_user(balance=100)
    job_id = await _imagine(gw, key, prompt)
    task_id = await _until(lambda: _submitted(account) and _submitted(account)[0],
                           "the submit")
    return account_id, key, job_id, str(task_id)


@pytest.mark.parametrize("flavor", [TRUEAI, NOVICEZK])
async def test_a_job_ends_when_its_proxy_calls_not_at_the_next_round(
        settings: Settings, flavor: str) -> None:
    async with FakeMidjourneyProxy(flavor=flavor) as mj:
        account = mj.add_account("secret-a", duration=0.3)
        async with serve_gateway(_settings(settings), notify_upstreams=True) as gw:
            account_id = await _account(gw, mj, "secret-a")
            _, key = await gw.create_user(balance=100)
            job_ids = [await _imagine(gw, key, f"a lighthouse {i}") for i in range(3)]
            started = time.monotonic()
            bodies = [await gw.wait(gw.client(key), job_id, timeout=NOTIFIED)
                      for job_id in job_ids]
            assert [b["status"] for b in bodies] == ["SUCCESS"] * 3
            assert time.monotonic() - started < ROUND
            assert all(b["data"]["cdnImage"] for b in bodies)
            # every submit carried the account's URL, token included
            links = gw.runtime.notify_links
            assert links is not None
            hooks = {body.get("notifyHook") for _, body in account.submissions}
            assert hooks == {f"{gw.base_url}/upstream/notify/{account_id}/"
                             f"{links.token(account_id)}"}
            ended = [(task, status, answer) for task, status, answer in mj.notifications
                     if status == "SUCCESS"]
            assert sorted(task for task, _, _ in ended) == sorted(_submitted(account))
            assert {answer for _, _, answer in ended} == {204}


async def test_a_call_is_a_hint_the_upstream_is_asked_before_anything_changes(
        settings: Settings) -> None:
    async with FakeMidjourneyProxy() as mj:
        account = mj.add_account("secret-a", duration=3600)  # runs past the test
        async with serve_gateway(_settings(settings), notify_upstreams=True) as gw:
            account_id, key, job_id, task_id = await _running(gw, mj, account, "a windmill")
            links = gw.runtime.notify_links
            assert links is not None
            url = f"/upstream/notify/{account_id}/{links.token(account_id)}"
            asked = account.list_calls
            # a forged end: gengate polls at once, the upstream says it still runs
            forged = {"id": task_id, "status": "SUCCESS", "progress": "100%",
                      "imageUrl": "http://203.0.113.9/not-the-result.png"}
            answer = await gw.http.post(url, json=forged)
            assert answer.status_code == 204 and answer.content == b""
            await _until(lambda: account.list_calls > asked, "the early poll")
            fetched = await gw.client(key).get(f"{V1}/fetch", params={"jobId": job_id})
            assert fetched.json()["status"] == "ON_QUEUE"
            # calls that are not about an end are answered and cost no request upstream
            asked = account.list_calls
            for body in ({"id": task_id, "status": "IN_PROGRESS", "progress": "40%"},
                         [1, 2], "not an object", {"status": "SUCCESS"},
                         {"id": "x" * 500, "status": "SUCCESS"}):
                answer = await gw.http.post(url, json=body)
                assert answer.status_code == 204, answer.text
            answer = await gw.http.post(url, content=b"{not json")
            assert answer.status_code == 204
            assert account.list_calls == asked
            # a wrong token, another account's token, no token: an unknown path
            for path in (f"/upstream/notify/{account_id}/{'0' * 32}",
                         f"/upstream/notify/{account_id + 1}/{links.token(account_id)}",
                         f"/upstream/notify/{account_id}/"):
                answer = await gw.http.post(path, json=forged)
                assert answer.status_code == 404, (path, answer.text)
                assert answer.json()["status"] == "FAILED"
            too_big = await gw.http.post(url, content=b" " * (300 * 1024))
            assert too_big.status_code == 413
            assert too_big.json()["status"] == "FAILED"
            wrong_method = await gw.http.get(url)
            assert wrong_method.status_code == 405


async def test_without_a_notify_url_nothing_is_given_and_the_route_is_unknown(
        settings: Settings) -> None:
    async with FakeMidjourneyProxy() as mj:
        account = mj.add_account("secret-a", duration=0.05)
        async with serve_gateway(_settings(settings)) as gw:
            # this account polls at the test settings' pace
            body = {"name": "a", "provider": "midjourney_proxy", "baseUrl": mj.base_url,
                    "secret": "secret-a", "slots": {"fast": 3}}
            response = await gw.http.post("/admin/accounts", json=body,
                                          headers={"Authorization": f"Bearer {gw.admin_key}"})
            account_id = response.json()["data"]["id"]
            _, key = await gw.create_user(balance=100)
            job_id = await _imagine(gw, key, "a harbour")
            assert (await gw.wait(gw.client(key), job_id))["status"] == "SUCCESS"
            assert all("notifyHook" not in b for _, b in account.submissions)
            assert gw.runtime.notify_links is None
            answer = await gw.http.post(f"/upstream/notify/{account_id}/{'0' * 32}", json={})
            assert answer.status_code == 404


async def test_a_call_to_an_api_node_ends_the_job_on_the_worker_node(
        pg_url: str, settings: Settings) -> None:
    shared = _settings(settings, database_url=pg_url)
    async with FakeMidjourneyProxy() as mj:
        account = mj.add_account("secret-a", duration=0.3)
        async with serve_gateway(shared, with_worker=False, notify_upstreams=True) as api:
            worker = await Runtime.start(
                shared.model_copy(update={"upstream_notify_url": api.base_url}),
                with_worker=True, with_api=False)
            try:
                assert api.runtime.worker is None
                await _account(api, mj, "secret-a")
                _, key = await api.create_user(balance=100)
                job_id = await _imagine(api, key, "a bridge")
                started = time.monotonic()
                body = await api.wait(api.client(key), job_id, timeout=NOTIFIED)
                assert body["status"] == "SUCCESS"
                assert time.monotonic() - started < ROUND
                assert [s for _, s, a in mj.notifications if a == 204][-1] == "SUCCESS"
                hooks = {b.get("notifyHook") for _, b in account.submissions}
                assert len(hooks) == 1 and str(hooks.pop()).startswith(api.base_url)
            finally:
                await worker.close()


async def test_a_failed_early_poll_leaves_the_job_to_the_round(settings: Settings) -> None:
    """An early poll that fails is not the account's failure nor the job's: the job
    waits for its round as if no call had come."""
    async with FakeMidjourneyProxy() as mj:
        account = mj.add_account("secret-a", duration=3600)
        async with serve_gateway(_settings(settings), notify_upstreams=True) as gw:
            account_id, key, job_id, task_id = await _running(gw, mj, account, "a tower")
            links = gw.runtime.notify_links
            assert links is not None
            account.token_expired = True  # the upstream now answers 401
            asked = len(account.requests)
            answer = await gw.http.post(
                f"/upstream/notify/{account_id}/{links.token(account_id)}",
                json={"id": task_id, "status": "SUCCESS"})
            assert answer.status_code == 204
            await _until(lambda: len(account.requests) > asked, "the early poll")
            state = (await gw.http.get(f"/admin/accounts/{account_id}",
                                       headers={"Authorization": f"Bearer {gw.admin_key}"}))
            assert state.json()["data"]["state"] == "healthy"
            fetched = await gw.client(key).get(f"{V1}/fetch", params={"jobId": job_id})
            assert fetched.json()["status"] == "ON_QUEUE"


def test_tokens_differ_by_account_and_by_key() -> None:
    from gengate.upstream_notify import NotifyLinks

    one, other = NotifyLinks("http://gw.example/", "key-1"), NotifyLinks("http://x", "key-2")
    assert one.token(1) != one.token(2) and one.token(1) != other.token(1)
    assert one.url(7) == f"http://gw.example/upstream/notify/7/{one.token(7)}"
    assert one.valid(7, one.token(7)) and not one.valid(7, other.token(7))
    assert "key-1" not in repr(one)
    assert httpx.URL(one.url(7)).path.count("/") == 4


async def test_a_job_sleeping_through_rounds_stops_at_once_when_its_lease_is_lost(
        settings: Settings) -> None:
    """A running job sleeps through rounds that bring it nothing new; if another node takes
    its lease meanwhile, the worker stops it at its next renewal, not at its next wake."""
    from sqlalchemy import Connection, text

    async with FakeMidjourneyProxy() as mj:
        account = mj.add_account("secret-a", duration=3600)
        fast_leases = _settings(settings, lease_seconds=0.6)  # renewed every 0.2 s
        async with serve_gateway(fast_leases, notify_upstreams=True) as gw:
            _, _, job_id, _ = await _running(gw, mj, account, "a lantern")
            worker = gw.runtime.worker
            assert worker is not None
            await _until(lambda: job_id in worker._polling, "the job waits on its poller")

            def taken(conn: Connection) -> None:  # another node claims it for an hour
                conn.execute(text("UPDATE jobs SET lease_owner = 'another-node', "
                                  "lease_expires_at = :until WHERE id = :id"),
                             {"until": time.time() + 3600, "id": job_id})

            await gw.runtime.store.db.run(taken)
            await _until(lambda: job_id not in worker._running, "the job stopped here")
            # its task goes on upstream for the new owner: nothing was cancelled there
            assert all(t.status != "CANCEL" for t in account.tasks.values())
