"""Scale-out figures on PostgreSQL: submit and fetch with one and with two API processes,
and job completion with one and with two workers, all in one run.

Needs PostgreSQL (``GENGATE_TEST_POSTGRES_URL``, default postgresql://postgres@127.0.0.1/test);
each run uses a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from run import HERE, call, free_port, stop, wait_up, wrk  # noqa: E402

ADMIN = "bench-admin-key"


def env_for(url: str, data: str) -> dict[str, str]:
    return {"GENGATE_DATABASE_URL": url, "GENGATE_DATA_DIR": data, "GENGATE_ADMIN_KEY": ADMIN,
            "GENGATE_RATE_PER_SECOND": "0", "GENGATE_RATE_PER_MINUTE": "0",
            "GENGATE_LOCAL_SCALE": "0.125", "GENGATE_WORKER_CONCURRENCY": "16",
            "GENGATE_POLL_INTERVAL": "0.5"}


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gengate", *args],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wrk_many(urls: list[str], seconds: int, script: str, key: str) -> dict[str, float]:
    """One wrk per API process, run at the same time; 64 connections in all."""
    results: list[dict[str, float]] = []
    threads = [threading.Thread(target=lambda u=u: results.append(
        wrk(u, seconds, script, {"GG_KEY": key}, connections=64 // len(urls)))) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rps": sum(r["rps"] for r in results), "p99_ms": max(r["p99_ms"] for r in results),
            "errors": sum(r["errors"] for r in results)}


def api_round(url: str, data: str, nodes: int, seconds: int) -> dict[str, dict[str, float]]:
    env = env_for(url, data)
    ports = [free_port() for _ in range(nodes)]
    procs = [spawn(["serve", "--no-worker", "--port", str(p)], env) for p in ports]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base, proc in zip(bases, procs, strict=True):
            wait_up(f"{base}/healthz", proc)
        user = call(f"{bases[0]}/admin/users", {"email": f"{uuid.uuid4().hex}@b.io",
                                                "balance": 10**9, "max_queue": 10**9},
                    {"Authorization": f"Bearer {ADMIN}"})["data"]
        key = user["apiKey"]
        submit = wrk_many([f"{b}/midjourney/v1/imagine" for b in bases], seconds,
                          "submit.lua", key)
        job = call(f"{bases[0]}/midjourney/v1/imagine", {"prompt": "fetch me"},
                   {"TT-API-KEY": key})["data"]["jobId"]
        fetch = wrk_many([f"{b}/midjourney/v1/fetch?jobId={job}" for b in bases], seconds,
                         "fetch.lua", key)
        return {"submit": submit, "fetch": fetch}
    finally:
        for proc in procs:
            stop(proc)


async def _submit_jobs(base: str, key: str, count: int) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with gate:
                r = await http.post(f"{base}/midjourney/v1/imagine", json={"prompt": f"j{i}"},
                                    headers={"TT-API-KEY": key})
                r.raise_for_status()
        await asyncio.gather(*[one(i) for i in range(count)])


async def _done(base: str, key: str) -> int:
    async with httpx.AsyncClient(timeout=60) as http:
        info = (await http.get(f"{base}/midjourney/v1/info",
                               headers={"TT-API-KEY": key})).json()["data"]
        return int(info["in_progress"])


def worker_round(url: str, data: str, workers: int, jobs: int) -> dict[str, float]:
    env = env_for(url, data)
    port = free_port()
    api = spawn(["serve", "--no-worker", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wait_up(f"{base}/healthz", api)
        key = call(f"{base}/admin/users", {"email": f"{uuid.uuid4().hex}@b.io",
                                           "balance": 10**9, "max_queue": 10**9},
                   {"Authorization": f"Bearer {ADMIN}"})["data"]["apiKey"]
        asyncio.run(_submit_jobs(base, key, jobs))
        started = time.perf_counter()
        procs = [spawn(["worker"], env) for _ in range(workers)]
        while asyncio.run(_done(base, key)) > 0:
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        return {"jobs": jobs, "seconds": elapsed, "jobs_per_s": jobs / elapsed}
    finally:
        for proc in [*procs, api]:
            stop(proc)


async def _database(base: str) -> tuple[str, str]:
    name = f"gengate_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base.replace("postgresql://", "postgres://"))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return base.rsplit("/", 1)[0] + f"/{name}", name


async def _drop(base: str, name: str) -> None:
    conn = await asyncpg.connect(base.replace("postgresql://", "postgres://"))
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


@contextlib.contextmanager
def fresh(base: str) -> Iterator[tuple[str, str]]:
    """A new, migrated database and data directory; both removed afterwards."""
    url, name = asyncio.run(_database(base))
    try:
        with tempfile.TemporaryDirectory(prefix="gengate-scale-") as data:
            subprocess.run([sys.executable, "-m", "gengate", "migrate"], check=True,
                           env={**os.environ, **env_for(url, data)}, capture_output=True)
            yield url, data
    finally:
        asyncio.run(_drop(base, name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=400)
    args = parser.parse_args()
    base = os.environ.get("GENGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    out: dict[str, object] = {}
    for nodes in (1, 2):
        with fresh(base) as (url, data):
            out[f"api_{nodes}"] = r = api_round(url, data, nodes, args.seconds)
        print(f"PostgreSQL, {nodes} API process(es): submit {r['submit']['rps']:,.0f} "
              f"req/s (p99 {r['submit']['p99_ms']:.1f} ms), fetch "
              f"{r['fetch']['rps']:,.0f} req/s (p99 {r['fetch']['p99_ms']:.1f} ms)", flush=True)
    for workers in (1, 2):
        with fresh(base) as (url, data):
            out[f"workers_{workers}"] = w = worker_round(url, data, workers, args.jobs)
        print(f"PostgreSQL, {workers} worker(s): {w['jobs']} jobs in {w['seconds']:.1f} s = "
              f"{w['jobs_per_s']:.0f} jobs/s", flush=True)
    a1, a2 = out["api_1"], out["api_2"]
    w1, w2 = out["workers_1"], out["workers_2"]
    print(f"scaling 1 -> 2: submit x{a2['submit']['rps'] / a1['submit']['rps']:.2f}, "  # type: ignore[index]
          f"fetch x{a2['fetch']['rps'] / a1['fetch']['rps']:.2f}, "  # type: ignore[index]
          f"completion x{w2['jobs_per_s'] / w1['jobs_per_s']:.2f}")  # type: ignore[index]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "scale.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
