"""A worker killed in the middle of a Flux or GPT image job, on SQLite and PostgreSQL:
another process takes the job over once its lease lapses, resumes the recorded upstream
task (never submits twice), and the job is charged once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gengate.store import Store
from tests.conftest import fresh_postgres
from tests.processes import gengate_env, serve

ADMIN = "takeover-admin"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    async with fresh_postgres(migrated=True) as url:
        yield url


def _env(data: Path, database: str | None) -> dict[str, str]:
    extra = {"database_url": database} if database else {}
    return gengate_env(data, admin_key=ADMIN, local_delay="1.5", local_scale="0.125",
                       lease_seconds="1", poll_interval="0.1", upstream_poll_interval="0.05",
                       **extra)


async def _fetch(http: httpx.AsyncClient, path: str, job_id: str,
                 headers: dict[str, str]) -> dict[str, Any]:
    return dict((await http.get(path, params={"jobId": job_id}, headers=headers)).json())


@pytest.mark.parametrize(("submit", "body", "fetch", "price"), [
    ("/flux/generate", {"prompt": "a fox in the snow", "mode": "flux-kontext-pro"},
     "/flux/fetch", 2),
    ("/openai/gpt/generations", {"prompt": "draw a fox", "model": "gpt-image-1"},
     "/openai/gpt/fetch", 2),
])
async def test_a_killed_workers_job_is_taken_over(tmp_path: Path, database: str | None,
                                                  submit: str, body: dict[str, Any],
                                                  fetch: str, price: int) -> None:
    data = tmp_path / "data"
    first = await serve(_env(data, database), log=tmp_path / "first.log")
    second = None
    try:
        async with httpx.AsyncClient(base_url=first.url) as http:
            user = (await http.post("/admin/users", json={"email": "k@x.io", "balance": 10},
                                    headers={"Authorization": f"Bearer {ADMIN}"})).json()
            headers = {"TT-API-KEY": user["data"]["apiKey"]}
            job_id = (await http.post(submit, json=body, headers=headers)).json()["data"]["jobId"]
            assert (await _fetch(http, fetch, job_id, headers))["status"] in (
                "PENDING_QUEUE", "ON_QUEUE")
            # the first worker recorded the upstream task (neither product shows progress)
            store = Store.open(database or f"sqlite:///{data / 'gengate.db'}")
            try:
                async with asyncio.timeout(20):
                    while (job := await store.get_job(job_id)) is None or not job.upstream_id:
                        await asyncio.sleep(0.02)
            finally:
                await store.close()
        first.kill()
        second = await serve(_env(data, database), log=tmp_path / "second.log")
        async with httpx.AsyncClient(base_url=second.url) as http:
            async with asyncio.timeout(30):
                while (done := await _fetch(http, fetch, job_id, headers))["status"] not in (
                        "SUCCESS", "FAILED"):
                    await asyncio.sleep(0.05)
            assert done["status"] == "SUCCESS", done
            assert (await http.get(done["data"]["imageUrl"])).status_code == 200
            ledger = (await http.get(f"/admin/users/{user['data']['userId']}/ledger",
                                     headers={"Authorization": f"Bearer {ADMIN}"})).json()
        lines = (data / "local-upstream" / "submissions.log").read_text().splitlines()
        assert sum(1 for line in lines if line.startswith(job_id)) == 1
        assert ledger["data"]["totals"] == {"topup": 10, "freeze": price, "settle": price,
                                            "refund": 0, "overage": 0}
        assert ledger["data"]["user"]["freeze_balance"] == 0
    finally:
        for node in (first, second):
            if node is not None:
                await node.shutdown()
