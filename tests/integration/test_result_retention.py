"""Retention: result files past their product's period are deleted from whichever store
holds them, once, by whichever node claims them; the job says its result expired, and job
and ledger rows stay."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gengate.clock import ManualClock
from gengate.config import Settings
from gengate.results import EXPIRED_PARENT
from gengate.retention import DAY, ResultRetention, RetentionPolicy
from gengate.testing import Gateway, serve_gateway
from tests.conftest import S3Bucket

V1 = "/midjourney/v1"


def _local_files(settings: Settings) -> list[str]:
    root = settings.data_dir / "cdn"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))


async def _imagine(gw: Gateway, key: str, prompt: str, split: bool = True) -> dict[str, Any]:
    client = gw.client(key)
    job = (await client.post(f"{V1}/imagine", json={"prompt": prompt,
                                                    "getUImages": split})).json()
    body = await gw.wait(client, job["data"]["jobId"])
    assert body["status"] == "SUCCESS", body
    return body


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_expired_results_are_deleted_and_the_job_says_so(
        backend: str, settings: Settings, s3_bucket: S3Bucket) -> None:
    settings = settings.model_copy(update={"result_retention_days": 30})
    if backend == "s3":
        settings = settings.model_copy(update=s3_bucket.settings("proxy"))

    def files() -> list[str]:
        return s3_bucket.keys() if backend == "s3" else _local_files(settings)

    clock = ManualClock()
    async with serve_gateway(settings, clock=clock) as gw:
        user_id, key = await gw.create_user(balance=100)
        body = await _imagine(gw, key, "an old harbour")
        job_id = body["jobId"]
        assert len(files()) == 5
        path = "/cdn/" + body["data"]["cdnImage"].split("/cdn/", 1)[1]
        ledger_before = await gw.runtime.store.ledger(user_id, 50, 0)
        retention = gw.runtime.retention
        assert retention is not None
        clock.advance(29 * DAY)
        assert await retention.run_once() == 0 and len(files()) == 5
        clock.advance(2 * DAY)
        assert await retention.run_once() == 1
        assert files() == []
        assert await retention.run_once() == 0
        client = gw.client(key)
        fetched = (await client.get(f"{V1}/fetch", params={"jobId": job_id})).json()
        assert fetched["status"] == "SUCCESS" and fetched["data"]["expired"] is True
        assert fetched["message"] == ("The result files of this job expired after 30 days "
                                      "and were deleted")
        assert fetched["data"]["cdnImage"] is None and fetched["data"]["images"] is None
        assert fetched["data"]["width"] == body["data"]["width"]
        listed = (await client.post(f"{V1}/fetch-list", json={})).json()
        assert [item["expired"] for item in listed["data"]] == [True]
        assert (await gw.http.get(path)).status_code == 404
        assert await gw.runtime.store.ledger(user_id, 50, 0) == ledger_before
        # an action needs the parent's image: it fails clearly and is refunded
        action = await client.post(f"{V1}/action", json={"jobId": job_id,
                                                         "action": "upsample1"})
        failed = await gw.wait(client, action.json()["data"]["jobId"])
        assert failed["status"] == "FAILED" and failed["message"] == EXPIRED_PARENT
        totals = await gw.runtime.store.ledger_totals(user_id)
        assert totals["refund"] == totals["freeze"] - totals["settle"]


async def test_retention_is_set_per_product(settings: Settings) -> None:
    clock = ManualClock()
    kept = settings.model_copy(update={"result_retention_days": 1,
                                       "result_retention": {"midjourney": 0}})
    async with serve_gateway(kept, clock=clock) as gw:
        _, key = await gw.create_user(balance=100)
        await _imagine(gw, key, "a meadow", split=False)
        clock.advance(5 * DAY)
        retention = gw.runtime.retention
        assert retention is None or await retention.run_once() == 0
        assert len(_local_files(settings)) == 1
        other = ResultRetention(gw.runtime.store, gw.runtime.stores, clock,
                                RetentionPolicy(0, {"midjourney": 4, "suno": 1}))
        assert await other.run_once() == 1 and _local_files(settings) == []


@pytest.mark.postgres
async def test_two_nodes_never_expire_the_same_result(
        settings: Settings, pg_url: str, s3_bucket: S3Bucket, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"database_url": pg_url,
                                           **s3_bucket.settings("proxy")})
    clock = ManualClock()
    async with serve_gateway(settings, clock=clock) as gw:
        _, key = await gw.create_user(balance=100)
        ids = [(await _imagine(gw, key, f"a field {i}"))["jobId"] for i in range(6)]
        assert len(s3_bucket.keys()) == 30
        clock.advance(8 * DAY)
        policy = RetentionPolicy(7)
        nodes = [ResultRetention(gw.runtime.store, gw.runtime.stores, clock, policy, batch=2)
                 for _ in range(3)]
        counts = await asyncio.gather(*[node.run_once() for node in nodes])
        assert sum(counts) == 6, counts
        assert s3_bucket.keys() == []
        jobs = await gw.runtime.store.get_jobs(ids)
        assert all(job.result["expired"] for job in jobs.values())
