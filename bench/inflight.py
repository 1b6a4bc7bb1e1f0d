"""10,000 jobs in flight on one worker process against a slow upstream: the worker's memory,
and the time from an upstream task's end to its job's SUCCESS.

On PostgreSQL (a database ``gengate_bench_inflight`` created on the server of
``GENGATE_TEST_POSTGRES_URL`` and dropped at the end): one ``gengate worker`` and
``bench/slow_upstream.py``, a midjourney-proxy whose tasks take ``--min`` to ``--max``
seconds, behind accounts of 1,000 slots each (the most one account may have). An API process
(``gengate serve --no-worker``) makes the user and the accounts and admits one imagine job;
the bench then keeps ``--jobs`` such jobs in flight by writing clones of it straight into
the tables (with their freeze in the ledger) as others end, so that the API's own speed plays
no part. The API process stays up: with ``GENGATE_UPSTREAM_NOTIFY_URL`` pointing at it (not
with ``--no-notify``), the proxy calls each task's ``notifyHook`` there and the API process
passes the ends on to the worker (``NOTIFY gengate_upstream``). Once the first task
has ended and 95 % of the jobs run upstream (or ``--ramp`` seconds after the start), it
measures for ``--measure`` seconds:

- the worker's resident memory (``VmRSS``, sampled every second; target < 300 MB);
- per task that ended upstream in that window, its job's ``finished_at`` minus the task's
  end as the upstream recorded it (target p99 < 1 s).

Results go to ``bench/results/inflight.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from filler import JOB_COLUMNS, LEDGER_COLUMNS  # noqa: E402
from run import HERE, call, free_port, stop, wait_up  # noqa: E402

from gengate.store.channels import JOBS_CHANNEL  # noqa: E402
from gengate.store.tables import LIVE_SQL, RUNNING_SQL  # noqa: E402

ADMIN = "bench-admin-key"


DATABASE = "gengate_bench_inflight"
RSS_TARGET_MB = 300.0
LATENCY_TARGET_S = 1.0
#: jobs one upstream account runs at once (the most an account may have)
SLOTS = 1000
#: the jobs' timeout (the longest there is): the tasks take up to --max seconds upstream
TIMEOUT = 1200


def _pg(url: str) -> str:
    return url.replace("postgresql://", "postgres://", 1)


async def _admin_sql(base: str, *statements: str) -> None:
    conn = await asyncpg.connect(_pg(base))
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, amount = line.split(":", 1)
            values[name] = int(amount.split()[0]) * 1024 / 1e6
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


class Feeder(threading.Thread):
    """Keeps ``target`` jobs in flight: every second, as many queued jobs as ended are
    written straight into the tables (clones of one job admitted by the API, with their
    freeze in the ledger, as admission writes them), and the worker is woken. It also
    samples the worker's memory and the jobs in flight."""

    def __init__(self, url: str, pid: int, target: int, template: dict[str, Any]):
        super().__init__(daemon=True)
        self.url, self.pid, self.target, self.template = url, pid, target, template
        #: (time, rss MB, in flight, running upstream)
        self.samples: list[tuple[float, float, int, int]] = []
        self.added = 0
        self.feeding = True
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - reported by the bench
            self.error = exc

    async def _run(self) -> None:
        conn = await asyncpg.connect(_pg(self.url))
        try:
            while not self.stopping.is_set():
                live = int(await conn.fetchval(f"SELECT COUNT(*) FROM jobs WHERE {LIVE_SQL}"))
                upstream = int(await conn.fetchval(
                    f"SELECT COUNT(*) FROM jobs WHERE {RUNNING_SQL} AND upstream_id IS NOT NULL"))
                with contextlib.suppress(OSError):
                    self.samples.append((time.time(), rss_mb(self.pid)[0], live, upstream))
                if self.feeding and live < self.target:
                    await self._add(conn, self.target - live)
                await asyncio.sleep(1.0)
        finally:
            await conn.close()

    async def _add(self, conn: asyncpg.Connection, count: int) -> None:
        t = self.template
        now = time.time()
        jobs, money = [], []
        for _ in range(count):
            row = dict(t)
            job_id = str(uuid.uuid4())
            row.update(id=job_id, created_at=now, deadline=now + TIMEOUT, timeout=TIMEOUT,
                       prompt=f"a lighthouse at dusk {job_id[:8]}", idempotency_key=None)
            jobs.append(tuple(row[c] for c in JOB_COLUMNS))
            money.append((t["user_id"], job_id, "freeze", t["quota"], "", now, t["key_id"]))
        async with conn.transaction():
            await conn.copy_records_to_table("jobs", records=jobs, columns=JOB_COLUMNS)
            await conn.copy_records_to_table("ledger", records=money, columns=LEDGER_COLUMNS)
            await conn.execute(
                "UPDATE users SET balance = balance - $1, freeze_balance = freeze_balance + $1,"
                " in_flight = in_flight + $2 WHERE id = $3",
                int(t["quota"]) * count, count, t["user_id"])
            await conn.execute(f"NOTIFY {JOBS_CHANNEL}")
        self.added += count


async def first_end(upstream: str, timeout: float) -> float:
    async with httpx.AsyncClient(timeout=30) as http:
        deadline = time.time() + timeout
        while time.time() < deadline:
            ends = (await http.get(f"{upstream}/bench/ends")).json()
            if ends:
                return float(min(ends.values()))
            await asyncio.sleep(1.0)
    raise SystemExit("no upstream task ended in time")


async def _template(url: str, job_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(_pg(url))
    try:
        row = await conn.fetchrow(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id = $1",
                                  job_id)
        assert row is not None
        return dict(row)
    finally:
        await conn.close()


def setup(upstream: str, jobs: int, base: str, database_url: str) -> dict[str, Any]:
    """A user and enough upstream accounts, made over the admin API of the API node at
    ``base``; one job admitted by the API, to clone."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    key = call(f"{base}/admin/users", {"email": "inflight@bench.example",
                                       "balance": 10**9, "max_queue": 10**6},
               admin)["data"]["apiKey"]
    # an account runs at most 1,000 jobs at once: enough accounts for all of them
    for n in range(-(-jobs * 6 // 5 // SLOTS)):
        call(f"{base}/admin/accounts", {
            "name": f"slow{n}", "provider": "midjourney_proxy", "baseUrl": upstream,
            "secret": f"bench-secret-{n}", "slots": {"fast": SLOTS}}, admin)
    job_id = call(f"{base}/midjourney/v1/imagine",
                  {"prompt": "a lighthouse at dusk", "timeout": TIMEOUT},
                  {"TT-API-KEY": key})["data"]["jobId"]
    return asyncio.run(_template(database_url, job_id))


def measure(args: argparse.Namespace, pg_base: str) -> dict[str, Any]:
    url = pg_base.rsplit("/", 1)[0] + f"/{DATABASE}"
    asyncio.run(_admin_sql(pg_base, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)',
                           f'CREATE DATABASE "{DATABASE}"'))
    procs: list[subprocess.Popen[bytes]] = []
    feeder: Feeder | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="gengate-inflight-") as data:
            env = {**os.environ, "GENGATE_DATABASE_URL": url, "GENGATE_DATA_DIR": data,
                   "GENGATE_ADMIN_KEY": ADMIN, "GENGATE_RATE_PER_SECOND": "0",
                   "GENGATE_RATE_PER_MINUTE": "0", "GENGATE_LOCAL_ACCOUNT": "false",
                   "GENGATE_WORKER_CONCURRENCY": str(args.jobs + args.jobs // 5),
                   # a worker of 10,000 jobs: more connections than the default 3 + 3
                   "GENGATE_DB_POOL_SIZE": "8", "GENGATE_DB_MAX_OVERFLOW": "4",
                   "GENGATE_LOG_LEVEL": "WARNING"}
            subprocess.run([sys.executable, "-m", "gengate", "migrate"], check=True, env=env,
                           capture_output=True)
            up_port = free_port()
            upstream = f"http://127.0.0.1:{up_port}"
            procs.append(subprocess.Popen(
                [sys.executable, str(HERE / "slow_upstream.py"), "--port", str(up_port),
                 "--min", str(args.min), "--max", str(args.max)],
                stdout=subprocess.DEVNULL))
            # the API node: setup goes through it, and the proxy's notifyHook calls reach
            # the worker through it (NOTIFY gengate_upstream), as in a deployment
            api_port = free_port()
            api_base = f"http://127.0.0.1:{api_port}"
            if args.notify:
                env["GENGATE_UPSTREAM_NOTIFY_URL"] = api_base
            api = subprocess.Popen([sys.executable, "-m", "gengate", "serve", "--no-worker",
                                    "--port", str(api_port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(api)
            wait_up(f"{api_base}/healthz", api, seconds=120)
            template = setup(upstream, args.jobs, api_base, url)
            log_path = Path(data) / "worker.log"
            with log_path.open("wb") as log:
                worker = subprocess.Popen([sys.executable, "-m", "gengate", "worker"],
                                          env=env, stdout=log, stderr=log)
            procs.append(worker)
            started = time.time()
            feeder = Feeder(url, worker.pid, args.jobs, template)
            feeder.start()
            asyncio.run(first_end(upstream, args.max + 900))
            # measured once (nearly) all of them run upstream, or --ramp seconds after the
            # start, whichever comes first (the report says how many ran upstream)
            give_up = started + args.ramp
            while time.time() < give_up and (
                    not feeder.samples or feeder.samples[-1][3] < args.jobs * 0.95):
                time.sleep(1.0)
            window = (time.time(), time.time() + args.measure)
            cpu_before = (cpu_seconds(worker.pid), cpu_seconds(api.pid))
            while time.time() < window[1]:
                time.sleep(1.0)
            cpu = [(after - before) / args.measure for before, after in
                   zip(cpu_before, (cpu_seconds(worker.pid), cpu_seconds(api.pid)),
                       strict=True)]
            feeder.feeding = False
            time.sleep(args.grace)
            feeder.stopping.set()
            feeder.join(timeout=60)
            with httpx.Client(timeout=60) as http:
                ends = {k: float(v) for k, v in http.get(f"{upstream}/bench/ends").json().items()}
                calls = http.get(f"{upstream}/bench/calls").json()
            stop(worker)
            worker_log = log_path.read_text(errors="replace")[-3000:]
            rows = asyncio.run(_jobs(url))
    finally:
        if feeder is not None:
            feeder.stopping.set()
        for proc in procs:
            stop(proc)
        asyncio.run(_admin_sql(pg_base, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    by_task = {r[0]: (r[1], r[2]) for r in rows if r[0]}
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r[1]] = statuses.get(r[1], 0) + 1
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []
    missing = 0
    for task_id, ended in ends.items():
        if not window[0] <= ended <= window[1]:
            continue
        status, finished = by_task.get(task_id, (None, None))
        if status != "SUCCESS" or finished is None:
            missing += 1
            continue
        latencies.append(finished - ended)
        timeline.append((round(ended - window[0], 3), round(finished - ended, 3)))
    latencies.sort()
    steady = [s for s in feeder.samples if window[0] <= s[0] <= window[1]]
    return {
        "jobs": args.jobs, "task_seconds": [args.min, args.max], "window": window,
        "notify": args.notify, "notify_calls": calls,
        "worker_cpu_share": cpu[0], "api_cpu_share": cpu[1], "load_while_measured":
            os.getloadavg(),
        "ramp_seconds": window[0] - started, "statuses": statuses, "added": feeder.added,
        "feeder_error": repr(feeder.error) if feeder.error else None,
        "in_flight_min": min((s[2] for s in steady), default=0),
        "in_flight_max": max((s[2] for s in steady), default=0),
        "upstream_min": min((s[3] for s in steady), default=0),
        "upstream_max": max((s[3] for s in steady), default=0),
        "rss_peak_mb": max((s[1] for s in feeder.samples), default=0.0),
        "rss_steady_max_mb": max((s[1] for s in steady), default=0.0),
        "ended": len(latencies), "not_success": missing,
        "latency_p50_s": statistics.median(latencies) if latencies else None,
        "latency_p99_s": latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
        "latency_max_s": latencies[-1] if latencies else None,
        #: (seconds into the window the task ended, seconds to its job's SUCCESS)
        "ends": sorted(timeline),
        "samples": feeder.samples, "worker_log_tail": worker_log,
    }


async def _jobs(url: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(_pg(url))
    try:
        return [tuple(r) for r in await conn.fetch(
            "SELECT upstream_id, status, finished_at FROM jobs")]
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs kept in flight")
    parser.add_argument("--min", type=float, default=240.0, help="shortest upstream task, s")
    parser.add_argument("--max", type=float, default=600.0, help="longest upstream task, s")
    parser.add_argument("--measure", type=float, default=120.0,
                        help="seconds measured once the jobs run upstream")
    parser.add_argument("--ramp", type=float, default=900.0,
                        help="seconds from the start after which the measurement begins even "
                             "if fewer than 95%% of the jobs run upstream yet")
    parser.add_argument("--no-notify", dest="notify", action="store_false",
                        help="give the proxy no notifyHook: polling only")
    parser.add_argument("--grace", type=float, default=15.0,
                        help="seconds given to the last ends before stopping")
    args = parser.parse_args()
    pg_base = os.environ.get("GENGATE_TEST_POSTGRES_URL",
                             "postgresql://postgres@127.0.0.1:5432/test")
    result = measure(args, pg_base)
    print(f"{result['jobs']:,} jobs in flight on one worker ({result['in_flight_min']:,} to "
          f"{result['in_flight_max']:,} while measured, {result['upstream_min']:,} to "
          f"{result['upstream_max']:,} of them running upstream; ramp "
          f"{result['ramp_seconds']:.0f} s), "
          f"upstream tasks of {args.min:.0f} to {args.max:.0f} s, "
          + (f"notifyHook calls to an API node ({result['notify_calls']['called']:,} made, "
             f"{result['notify_calls']['failed']:,} failed):" if args.notify
             else "polling only (no notifyHook):"))
    print(f"  CPU while measured: worker {result['worker_cpu_share']:.0%} of a core, API node "
          f"{result['api_cpu_share']:.0%}; load average {result['load_while_measured'][0]:.1f}")
    if args.notify and result["notify_calls"].get("end_calls"):
        print(f"  the proxy's own delay before an end's call: p50 "
              f"{result['notify_calls']['end_call_late_p50_s']:.3f} s, p99 "
              f"{result['notify_calls']['end_call_late_p99_s']:.3f} s")
    print(f"  worker memory: {result['rss_steady_max_mb']:.0f} MB at most while measured, "
          f"{result['rss_peak_mb']:.0f} MB peak (target < {RSS_TARGET_MB:.0f} MB)")
    if result["latency_p99_s"] is not None:
        print(f"  upstream end -> SUCCESS: p50 {result['latency_p50_s']:.2f} s, p99 "
              f"{result['latency_p99_s']:.2f} s, max {result['latency_max_s']:.2f} s over "
              f"{result['ended']:,} jobs, {result['not_success']} not SUCCESS by the end "
              f"(target p99 < {LATENCY_TARGET_S:.0f} s)")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "inflight.json").write_text(json.dumps(
        {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "load": os.getloadavg(), **result},
        indent=2))


if __name__ == "__main__":
    main()
