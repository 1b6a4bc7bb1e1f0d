"""At most once upstream, against the fake midjourney-proxy over real sockets: a submit
the upstream took is never sent again because its answer was lost (a worker killed before
saving the task id, a timeout, a dropped connection), and resends after lost tasks are
bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.providers.base import ProviderTask
from gengate.providers.local import LocalProvider
from gengate.testing import Gateway, serve_gateway
from gengate.testing.mjproxy import FakeMidjourneyProxy, FakeMjAccount
from tests.processes import gengate_env, serve

V1 = "/midjourney/v1"
ADMIN = "once-admin"


def _admin(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _add(http: httpx.AsyncClient, admin_key: str, mj: FakeMidjourneyProxy, name: str,
               secret: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "provider": "midjourney_proxy", "baseUrl": mj.base_url,
            "secret": secret, "slots": {"fast": 3}, **fields}
    response = await http.post("/admin/accounts", json=body, headers=_admin(admin_key))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _imagine(client: httpx.AsyncClient, prompt: str) -> str:
    response = await client.post(f"{V1}/imagine", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["jobId"])


async def _until(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


# -- a worker killed between the upstream's accept and saving the task id ----------------


def _env(data: Path) -> dict[str, str]:
    return gengate_env(data, admin_key=ADMIN, local_account="false", lease_seconds="1",
                       poll_interval="0.1", upstream_poll_interval="0.05")


async def test_takeover_finds_the_task_a_killed_worker_started(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = second = None
    async with FakeMidjourneyProxy() as mj:
        only = mj.add_account("secret-only", duration=0.3)
        # the upstream takes each of the three submits but holds its answer: the worker
        # is killed while it waits, before it can save any task id
        only.fail_next("accept_late", times=3, delay=60)
        try:
            first = await serve(_env(data), log=tmp_path / "first.log")
            async with httpx.AsyncClient(base_url=first.url) as http:
                await _add(http, ADMIN, mj, "only", "secret-only")
                user = (await http.post("/admin/users", json={"email": "o@x.io",
                                                              "balance": 10},
                                        headers=_admin(ADMIN))).json()["data"]
                client = httpx.AsyncClient(base_url=http.base_url,
                                           headers={"TT-API-KEY": user["apiKey"]})
                async with client:
                    ids = [await _imagine(client, f"a lone lighthouse {i}") for i in range(3)]
                await _until(lambda: len(only.tasks) == 3)
            first.kill()
            second = await serve(_env(data), log=tmp_path / "second.log")
            async with httpx.AsyncClient(base_url=second.url,
                                         headers={"TT-API-KEY": user["apiKey"]}) as http:
                bodies = []
                for job_id in ids:
                    async with asyncio.timeout(30):
                        while True:
                            body = (await http.get(f"{V1}/fetch",
                                                   params={"jobId": job_id})).json()
                            if body["status"] in ("SUCCESS", "FAILED"):
                                break
                            await asyncio.sleep(0.05)
                    bodies.append(body)
                ledger = (await http.get(f"/admin/users/{user['userId']}/ledger",
                                         headers=_admin(ADMIN))).json()["data"]
        finally:
            for node in (first, second):
                if node is not None:
                    await node.shutdown()
        assert [b["status"] for b in bodies] == ["SUCCESS"] * 3, bodies
        # the new owner found each task by its tag: exactly one upstream task per job
        assert len(only.tasks) == 3
        assert sorted(t.status for t in only.tasks.values()) == ["SUCCESS"] * 3
        assert all(t.state and t.state.startswith(tuple(ids)) for t in only.tasks.values())
        assert ledger["totals"] == {
            "topup": 10, "freeze": 6, "settle": 6, "refund": 0,
            "overage": 0,
        }


# -- a submit whose answer never comes ----------------------------------------------------


def _pool(settings: Settings, **extra: Any) -> Settings:
    return settings.model_copy(update={"local_account": False, **extra})


async def _setup(gw: Gateway, mj: FakeMidjourneyProxy) -> httpx.AsyncClient:
    await _add(gw.http, gw.admin_key, mj, "first", "secret-first", priority=10)
    await _add(gw.http, gw.admin_key, mj, "second", "secret-second")
    _, key = await gw.create_user(balance=20)
    return gw.client(key)


async def _no_second_task(settings: Settings, kind: str) -> tuple[FakeMjAccount,
                                                                  FakeMjAccount,
                                                                  list[dict[str, Any]]]:
    async with FakeMidjourneyProxy() as mj:
        first = mj.add_account("secret-first", duration=0.1)
        second = mj.add_account("secret-second", duration=0.1)
        first.fail_next(kind, times=3, delay=3)
        async with serve_gateway(_pool(settings, upstream_timeout=0.5)) as gw:
            client = await _setup(gw, mj)
            ids = [await _imagine(client, f"a slow tide {i}") for i in range(3)]
            bodies = [await gw.wait(client, job_id) for job_id in ids]
        return first, second, bodies


async def test_a_late_answer_does_not_start_a_second_task(settings: Settings) -> None:
    first, second, bodies = await _no_second_task(settings, "accept_late")
    assert [b["status"] for b in bodies] == ["SUCCESS"] * 3, bodies
    # the worker gave up waiting, found each task by its tag and followed it there
    assert len(first.tasks) == 3 and not second.tasks
    assert sorted(t.status for t in first.tasks.values()) == ["SUCCESS"] * 3


async def test_a_dropped_answer_does_not_start_a_second_task(settings: Settings) -> None:
    first, second, bodies = await _no_second_task(settings, "accept_drop")
    assert [b["status"] for b in bodies] == ["SUCCESS"] * 3, bodies
    assert len(first.tasks) == 3 and not second.tasks


async def test_an_unfindable_submit_is_cancelled_once_the_job_ends(settings: Settings) -> None:
    clock = ManualClock()
    async with FakeMidjourneyProxy(clock=clock.now) as mj:
        first = mj.add_account("secret-first", duration=30)
        second = mj.add_account("secret-second", duration=1)
        # the answer is lost and the task list does not show the task yet: the job moves
        # on without knowing, and the task it left behind is cancelled when the job ends
        first.fail_next("accept_drop")
        first.lose_tasks()
        async with serve_gateway(_pool(settings, upstream_timeout=0.5)) as gw:
            client = await _setup(gw, mj)
            job_id = await _imagine(client, "a hidden cove")
            await _until(lambda: bool(second.tasks))
            first.lose_tasks(False)  # the task list shows it now
            clock.advance(2)  # the second account's task is done, the first's still runs
            body = await gw.wait(client, job_id)
            assert body["status"] == "SUCCESS", body
            assert len(second.tasks) == 1
            await _until(lambda: [t.status for t in first.tasks.values()] == ["CANCEL"])


# -- lost tasks ---------------------------------------------------------------------------


async def test_a_lost_task_is_resent_a_bounded_number_of_times(settings: Settings) -> None:
    async with FakeMidjourneyProxy() as mj:
        only = mj.add_account("secret-only", duration=0.05)
        only.lose_tasks()  # every task is forgotten as soon as it is taken
        async with serve_gateway(_pool(settings, max_resends=1)) as gw:
            await _add(gw.http, gw.admin_key, mj, "only", "secret-only")
            user_id, key = await gw.create_user(balance=20)
            client = gw.client(key)
            ids = [await _imagine(client, f"a vanishing star {i}") for i in range(3)]
            bodies = [await gw.wait(client, job_id) for job_id in ids]
            totals = (await gw.http.get(f"/admin/users/{user_id}/ledger",
                                        headers=_admin(gw.admin_key))).json()["data"]["totals"]
        assert [b["status"] for b in bodies] == ["FAILED"] * 3
        assert all("sent upstream 2 times" in b["message"] for b in bodies), bodies
        # one send and one resend per job, never more
        assert len(only.tasks) == 6
        assert totals == {"topup": 20, "freeze": 6, "settle": 0, "refund": 6, "overage": 0}


# -- the local renderer -------------------------------------------------------------------


def _task(job_id: str, tag: str) -> ProviderTask:
    return ProviderTask(job_id=job_id, action="imagine", prompt="a paper boat", mode="fast",
                        seed=1, aspect=(1, 1), version="7", tag=tag)


async def test_the_local_renderer_is_idempotent_by_job(tmp_path: Path) -> None:
    local = LocalProvider(tmp_path / "local")
    first = await local.submit(_task("job-a", "job-a.1"))
    again = await local.submit(_task("job-a", "job-a.2"))
    other = await local.submit(_task("job-b", "job-b.1"))
    assert first == again != other
    assert await local.find("job-a.1") == await local.find("job-a.2") == first
    assert await local.find("job-a.3") is None
    log = (tmp_path / "local" / "submissions.log").read_text().splitlines()
    assert [line.split()[0] for line in log] == ["job-a", "job-b"]
    await local.forget(first)  # its tags go with it
    assert await local.find("job-a.1") is None
    assert len(list((tmp_path / "local" / "tags").iterdir())) == 1
    assert await local.find("job-b.1") == other
