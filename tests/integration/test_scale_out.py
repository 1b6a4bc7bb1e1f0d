"""Several API and worker processes on one PostgreSQL database: nothing lost, nothing done
twice, no money out of place, even when a worker is killed mid-run."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from gengate.config import Settings
from gengate.store import Store
from gengate.testing import WebhookReceiver
from tests.conftest import S3Bucket
from tests.processes import Node, gengate_env, serve, start

ADMIN = "scale-admin"
#: a live worker renews its leases every third of this; a loaded machine (other test runs
#: beside this one) can stall it for seconds, and a lease that lapses on a live worker
#: lets a second one submit the same job: long enough for that never to happen, short
#: enough for the killed worker's jobs to be taken over quickly
LEASE = "10"
#: enough that both API nodes and all workers stay busy and the killed worker dies holding
#: jobs (asserted below); more only makes the run longer
JOBS = 400
#: PostgreSQL connections the cluster below may hold at once, by the default pool sizes
#: (docs/deploy.md): two API processes, at most three workers alive at once (each with
#: one LISTEN connection), this test's own store (2) and the counting connection (1):
#: 44, so two runs side by side fit a default server's max_connections of 100
_defaults = Settings()
BUDGET = (2 * sum(_defaults.pool_sizes(api=True, worker=False))
          + 3 * (sum(_defaults.pool_sizes(api=False, worker=True)) + 1) + 2 + 1)


class Cluster:
    """gengate processes started by the test, all on one database and one data directory."""

    def __init__(self, url: str, data: Path):
        self.env = gengate_env(
            data, database_url=url, admin_key=ADMIN, local_scale="0.125", local_delay="0.1",
            lease_seconds=LEASE, poll_interval="0.5", upstream_poll_interval="0.1",
            webhook_allow="127.0.0.1", webhook_backoff="0.2", worker_concurrency="16",
            rate_per_second="0", rate_per_minute="0")
        self.nodes: list[Node] = []
        #: each process's output, for a failing run's post-mortem
        self.logs = data.parent / "logs"

    def _log(self, what: str) -> Path:
        return self.logs / f"{what}-{len(self.nodes)}.log"

    def start(self, *args: str, env: dict[str, str] | None = None) -> Node:
        node = start({**self.env, **(env or {})}, *args, log=self._log(args[0]))
        self.nodes.append(node)
        return node

    async def api(self, env: dict[str, str] | None = None) -> str:
        node = await serve({**self.env, **(env or {})}, "--no-worker", log=self._log("serve"))
        self.nodes.append(node)
        return node.url

    async def stop(self) -> None:
        for node in self.nodes:
            if node.running():
                node.proc.terminate()
        for node in self.nodes:
            await node.shutdown()


async def _statuses(store: Store) -> Counter[str]:
    from sqlalchemy import func, select

    from gengate.store.tables import jobs

    def count(conn):  # type: ignore[no-untyped-def]
        return Counter(dict(conn.execute(select(jobs.c.status, func.count())
                                         .group_by(jobs.c.status)).all()))
    return await store.db.read(count)


#: the node name of the worker the tests kill (its leases are held under this name)
VICTIM = {"GENGATE_NODE_ID": "victim"}


async def _held_by(store: Store, owner: str) -> set[str]:
    """Unfinished jobs whose lease belongs to the node ``owner``."""
    from sqlalchemy import select

    from gengate.store.tables import jobs

    def rows(conn):  # type: ignore[no-untyped-def]
        return {r.id for r in conn.execute(
            select(jobs.c.id).where(jobs.c.lease_owner == owner,
                                    jobs.c.status.not_in(("SUCCESS", "FAILED"))))}
    return await store.db.read(rows)


async def _failures(store: Store) -> Counter[str]:
    """Why jobs failed, for the assertion message."""
    from sqlalchemy import select

    from gengate.store.tables import jobs

    def rows(conn):  # type: ignore[no-untyped-def]
        return Counter(r.message for r in conn.execute(
            select(jobs.c.message).where(jobs.c.status == "FAILED")))
    return await store.db.read(rows)


class ConnectionPeak:
    """The most connections to one database seen at once, sampled while it runs."""

    def __init__(self, url: str):
        self.url = url
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ConnectionPeak:
        conn = await asyncpg.connect(self.url.replace("postgresql://", "postgres://"))
        self._task = asyncio.create_task(self._sample(conn))
        return self

    async def _sample(self, conn: asyncpg.Connection) -> None:
        name = self.url.rsplit("/", 1)[1]
        try:
            while True:
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name)
                self.peak = max(self.peak, int(count))
                await asyncio.sleep(0.2)
        finally:
            await conn.close()

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _ledger_per_job(store: Store) -> Counter[tuple[str, str]]:
    from sqlalchemy import select

    from gengate.store.tables import ledger

    def rows(conn):  # type: ignore[no-untyped-def]
        return Counter((r.job_id, r.kind) for r in conn.execute(
            select(ledger.c.job_id, ledger.c.kind).where(ledger.c.job_id.is_not(None))))
    return await store.db.read(rows)


@pytest.mark.timeout(420)
async def test_nodes_share_the_work_and_survive_a_killed_worker(
        pg_url: str, tmp_path: Path) -> None:
    cluster = Cluster(pg_url, tmp_path / "data")
    store = Store.open(pg_url, pool=(2, 0))
    try:
        async with WebhookReceiver() as receiver, ConnectionPeak(pg_url) as connections:
            apis = [await cluster.api(), await cluster.api()]
            victim = cluster.start("worker", env=VICTIM)
            cluster.start("worker")
            async with httpx.AsyncClient(timeout=60) as http:
                keys = []
                for i in range(4):
                    user = (await http.post(f"{apis[0]}/admin/users", headers={
                        "Authorization": f"Bearer {ADMIN}"}, json={
                        "email": f"u{i}@x.io", "balance": 10_000, "max_queue": 1000})).json()
                    keys.append(user["data"]["apiKey"])
                gate = asyncio.Semaphore(48)

                async def submit(i: int) -> str:
                    async with gate:
                        response = await http.post(
                            f"{apis[i % 2]}/midjourney/v1/imagine",
                            headers={"TT-API-KEY": keys[i % 4]},
                            json={"prompt": f"scale test {i}", "hookUrl": receiver.url})
                        assert response.status_code == 200, response.text
                        return str(response.json()["data"]["jobId"])

                ids = await asyncio.gather(*[submit(i) for i in range(JOBS)])
            assert len(set(ids)) == JOBS
            async with asyncio.timeout(240):
                # kill the victim mid-run, at a moment it holds jobs (waiting for a share of
                # the jobs to finish instead found it idle on a fast machine: all were done)
                while ((await _statuses(store))["SUCCESS"] < JOBS // 8
                       or len(await _held_by(store, VICTIM["GENGATE_NODE_ID"])) < 4):
                    await asyncio.sleep(0.05)
                victim.kill()
                # its leases outlive it: the jobs it held must be taken over
                orphans = await _held_by(store, VICTIM["GENGATE_NODE_ID"])
                assert orphans, "the killed worker held no job"
                cluster.start("worker")
                while True:
                    statuses = await _statuses(store)
                    if statuses["SUCCESS"] + statuses["FAILED"] == JOBS:
                        break
                    await asyncio.sleep(0.5)
            assert statuses == Counter({"SUCCESS": JOBS}), await _failures(store)
            delivered: set[str] = set()
            async with asyncio.timeout(120):
                while len(delivered) < JOBS:
                    request = await receiver.next(timeout=60)
                    delivered.add(orjson.loads(request.body)["jobId"])
            assert delivered == set(ids)
        assert connections.peak <= BUDGET, (connections.peak, BUDGET)
        ledger = await _ledger_per_job(store)
        for job_id in ids:
            assert ledger[(job_id, "freeze")] == 1 and ledger[(job_id, "settle")] == 1
            assert ledger[(job_id, "refund")] == 0
        log = (tmp_path / "data" / "local-upstream" / "submissions.log").read_text().split()
        by_job: dict[str, list[int]] = {}
        for job_id, _upstream, pid in zip(log[::3], log[1::3], log[2::3], strict=True):
            by_job.setdefault(job_id, []).append(int(pid))
        assert set(by_job) == set(ids)
        for job_id, pids in by_job.items():
            live = [p for p in pids if p != victim.pid]
            assert len(live) <= 1, f"{job_id} was submitted by two live workers: {pids}"
        for user in await store.list_users():
            totals = await store.ledger_totals(user.id)
            assert user.freeze_balance == 0 and user.in_flight == 0
            assert user.balance == totals["topup"] - totals["settle"]
    finally:
        await cluster.stop()
        await store.close()


async def test_concurrent_submits_across_nodes_hold_limits(pg_url: str,
                                                           tmp_path: Path) -> None:
    cluster = Cluster(pg_url, tmp_path / "data")
    try:
        apis = [await cluster.api(), await cluster.api()]
        async with httpx.AsyncClient(timeout=60) as http:
            async def user(balance: int, max_queue: int) -> str:
                body = (await http.post(f"{apis[1]}/admin/users", headers={
                    "Authorization": f"Bearer {ADMIN}"}, json={
                    "email": f"{uuid.uuid4().hex}@x.io", "balance": balance,
                    "max_queue": max_queue})).json()
                return str(body["data"]["apiKey"])

            async def burst(key: str, n: int) -> list[int]:
                responses = await asyncio.gather(*[
                    http.post(f"{apis[i % 2]}/midjourney/v1/imagine",
                              headers={"TT-API-KEY": key}, json={"prompt": f"p{i}"})
                    for i in range(n)])
                return [r.status_code for r in responses]

            poor = await burst(await user(balance=21, max_queue=100), 60)
            assert poor.count(200) == 10 and poor.count(402) == 50
            busy = await burst(await user(balance=1000, max_queue=7), 60)
            assert busy.count(200) == 7 and busy.count(499) == 53
    finally:
        await cluster.stop()


#: each job's files in the bucket, served by the node that did not run it; a worker killed
#: after a quarter of them
S3_JOBS = 40


@pytest.mark.timeout(300)
async def test_results_in_the_object_store_are_served_by_the_other_node(
        pg_url: str, tmp_path: Path, s3_bucket: S3Bucket) -> None:
    """Workers write results to the bucket; an API node with a disk of its own serves
    them (with Range), though another node took the jobs and a worker was killed."""
    cluster = Cluster(pg_url, tmp_path / "workers")
    cluster.env.update({**s3_bucket.env("proxy"), "GENGATE_SECRET_KEY": "scale-out-secret"})
    store = Store.open(pg_url)
    try:
        apis = [await cluster.api({"GENGATE_DATA_DIR": str(tmp_path / f"api{i}")})
                for i in range(2)]
        victim = cluster.start("worker", env=VICTIM)
        cluster.start("worker")
        async with httpx.AsyncClient(timeout=60) as http:
            user = (await http.post(f"{apis[0]}/admin/users", headers={
                "Authorization": f"Bearer {ADMIN}"}, json={
                "email": "s3@x.io", "balance": 10_000, "max_queue": 1000})).json()
            key = {"TT-API-KEY": user["data"]["apiKey"]}
            ids = []
            for i in range(S3_JOBS):
                response = await http.post(f"{apis[0]}/midjourney/v1/imagine", headers=key,
                                           json={"prompt": f"object {i}",
                                                 "getUImages": i % 2 == 0})
                assert response.status_code == 200, response.text
                ids.append(response.json()["data"]["jobId"])
            async with asyncio.timeout(200):
                while (await _statuses(store))["SUCCESS"] < S3_JOBS // 4:
                    await asyncio.sleep(0.2)
                victim.kill()
                cluster.start("worker")
                while True:
                    statuses = await _statuses(store)
                    if statuses["SUCCESS"] + statuses["FAILED"] == S3_JOBS:
                        break
                    await asyncio.sleep(0.5)
            assert statuses == Counter({"SUCCESS": S3_JOBS}), await _failures(store)
            served = set()
            for job_id in ids:
                body = (await http.get(f"{apis[1]}/midjourney/v1/fetch", headers=key,
                                       params={"jobId": job_id})).json()
                for url in [body["data"]["cdnImage"], *(body["data"]["images"] or [])]:
                    path = "/cdn/" + url.split("/cdn/", 1)[1]
                    head = await http.get(f"{apis[1]}{path}", headers={"Range": "bytes=0-7"})
                    assert head.status_code == 206 and head.content == b"\x89PNG\r\n\x1a\n"
                    assert head.headers["content-type"] == "image/png"
                    served.add(path.removeprefix("/cdn/"))
        assert len(served) == S3_JOBS // 2 * 5 + S3_JOBS // 2
        assert set(s3_bucket.keys()) == served
        assert list(tmp_path.rglob("cdn/**/*.png")) == []
    finally:
        await cluster.stop()
        await store.close()
