"""A database that does not answer for a moment: requests get 503 in the contract's
envelope (never a 500), and a job whose change cannot be written is given back and run
again, not failed, and charged once."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from gengate.config import Settings
from gengate.errors import DatabaseUnavailable
from gengate.testing import serve_gateway

V1 = "/midjourney/v1"


async def test_a_job_whose_end_cannot_be_written_runs_again_and_is_charged_once(
        settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        store = gw.runtime.store
        real = store.succeed
        calls: list[str] = []

        async def flaky_succeed(job_id: str, *args: Any, **kwargs: Any) -> bool:
            calls.append(job_id)
            if len(calls) == 1:  # the first end meets a database that does not answer
                raise DatabaseUnavailable()
            return await real(job_id, *args, **kwargs)

        store.succeed = flaky_succeed  # type: ignore[method-assign]
        user_id, key = await gw.create_user(balance=10)
        client = gw.client(key)
        response = await client.post(f"{V1}/imagine", json={"prompt": "a quiet harbour"})
        job_id = response.json()["data"]["jobId"]
        body = await gw.wait(client, job_id)
        assert body["status"] == "SUCCESS", body
        assert calls == [job_id, job_id]
        totals = await store.ledger_totals(user_id)
        assert (totals["settle"], totals["refund"]) == (totals["freeze"], 0)
        info = (await client.get(f"{V1}/info")).json()["data"]
        assert info["freeze_balance"] == 0


async def test_lost_connections_answer_503_in_the_envelope_then_recover(
        pg_url: str, settings: Settings) -> None:
    shared = settings.model_copy(update={"database_url": pg_url})
    async with serve_gateway(shared, with_worker=False) as gw:
        _, key = await gw.create_user(balance=100, max_queue=50)
        client = gw.client(key)
        # warm the pool: every connection it holds is one the server will cut
        answers = await asyncio.gather(*(client.get(f"{V1}/info") for _ in range(8)))
        assert {a.status_code for a in answers} == {200}
        database = pg_url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(pg_url.rsplit("/", 1)[0] + "/postgres")
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()", database)
        finally:
            await admin.close()
        assert cut >= 1
        statuses = []
        for n in range(12):
            response = await client.post(f"{V1}/imagine", json={"prompt": f"a pier {n}"})
            statuses.append(response.status_code)
            body = response.json()
            if response.status_code == 503:
                assert body["status"] == "FAILED" and "database" in body["message"], body
            else:
                assert response.status_code == 200, body
        assert 503 in statuses and 500 not in statuses
        assert statuses[-1] == 200  # the pool replaced what it lost
        # nothing half-written: every admitted job is frozen once, the balance adds up
        info = (await client.get(f"{V1}/info")).json()["data"]
        admitted = statuses.count(200)
        listed = (await client.get(f"{V1}/fetch-list",
                                    params={"limit": 100, "status": "ALL"})).json()["data"]
        assert len(listed) == admitted
        assert info["freeze_balance"] == sum(j["quota"] for j in listed)
        assert info["balance"] + info["freeze_balance"] == 100
