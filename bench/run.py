"""``make bench``: gengate's submit and fetch throughput, for Midjourney and Flux, next to a
bare ASGI app, in one run; on SQLite and, for Midjourney, on PostgreSQL.

Every server runs as one uvicorn process (uvloop, httptools) on 127.0.0.1; wrk drives it
with 2 threads and 64 connections. gengate runs with ``--no-worker`` so that the figures
are the API's own (auth, admission, freeze, insert); the worker's image rendering would
otherwise share the same two cores. PostgreSQL is ``GENGATE_TEST_POSTGRES_URL`` (default
postgresql://postgres@127.0.0.1:5432/test), in a fresh database dropped afterwards.
Results go to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import asyncpg

HERE = Path(__file__).parent
ADMIN = "bench-admin-key"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
#: the targets: (least share of the bare app's rate, most p99 in ms), per kind of load
TARGETS = {"submit": (0.25, 30.0), "fetch": (0.50, 30.0), "fetch_finished": (0.50, 30.0)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds  # a loaded machine starts a server slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not come up: {url}")


def wrk(url: str, seconds: int, script: str | None = None, env: dict[str, str] | None = None,
        connections: int = 64) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", str(HERE / script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert rps is not None and p99 is not None, out  # wrk always prints both
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {"rps": float(rps.group(1)), "p99_ms": float(p99.group(1)) * scale,
            "errors": int(non2xx.group(1)) if non2xx else 0,
            "requests": float(total.group(1)) if total else 0.0}


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, every thread) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(proc: subprocess.Popen[bytes], url: str, seconds: int, script: str | None = None,
         env: dict[str, str] | None = None) -> dict[str, float]:
    """wrk's figures, and the server's CPU time per request (``cpu_us``): unlike the rate,
    it does not drop when other work on the machine takes the cores."""
    before = cpu_seconds(proc.pid)
    figures = wrk(url, seconds, script, env)
    figures["cpu_us"] = (cpu_seconds(proc.pid) - before) / max(1.0, figures["requests"]) * 1e6
    return figures


def start(args: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def call(url: str, body: dict[str, Any] | None, headers: dict[str, str]) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json",
                                                          **headers})
    with urllib.request.urlopen(req, timeout=10) as response:
        return cast("dict[str, Any]", json.loads(response.read()))


def bench_bare(seconds: int) -> dict[str, float]:
    port = free_port()
    proc = start([sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port),
                  "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                  "--log-level", "warning"], port, {"PYTHONPATH": str(HERE.parent)})
    try:
        wait_up(f"http://127.0.0.1:{port}/", proc)
        return wrk(f"http://127.0.0.1:{port}/", seconds)
    finally:
        stop(proc)


class Anchor:
    """The bare app, running for a whole round, measured before each of gengate's loads and
    once after the last: a load is compared with the two measurements around it, taken
    seconds apart, so that a change in what else runs on the machine weighs on both."""

    def __init__(self, seconds: int):
        self.seconds = seconds
        self.port = free_port()
        self.taken: list[dict[str, float]] = []
        self.proc = start([sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port",
                           str(self.port), "--loop", "uvloop", "--http", "httptools",
                           "--no-access-log", "--log-level", "warning"], self.port,
                          {"PYTHONPATH": str(HERE.parent)})
        wait_up(f"http://127.0.0.1:{self.port}/", self.proc)

    def measure(self) -> dict[str, float]:
        figures = load(self.proc, f"http://127.0.0.1:{self.port}/", self.seconds)
        self.taken.append(figures)
        return figures

    def around(self, figures: dict[str, float], before: dict[str, float]) -> dict[str, float]:
        """``figures`` (a load measured after ``before``) with the bare app's rate and CPU
        per request: the mean of ``before`` and a measurement taken now."""
        after = self.measure()
        figures["bare_rps"] = (before["rps"] + after["rps"]) / 2
        figures["bare_cpu_us"] = (before["cpu_us"] + after["cpu_us"]) / 2
        return figures

    def close(self) -> None:
        stop(self.proc)


def _serve(data: str, port: int, worker: bool,
           database_url: str | None = None) -> subprocess.Popen[bytes]:
    env = {"GENGATE_DATA_DIR": data, "GENGATE_ADMIN_KEY": ADMIN, "GENGATE_PORT": str(port),
           "GENGATE_RATE_PER_SECOND": "0", "GENGATE_RATE_PER_MINUTE": "0"}
    if database_url is not None:
        env["GENGATE_DATABASE_URL"] = database_url
    args = [sys.executable, "-m", "gengate", "serve", *([] if worker else ["--no-worker"])]
    return start(args, port, env)


def _user(base: str) -> str:
    return str(call(f"{base}/admin/users", {"email": "bench@example.com", "balance": 10**9,
                                            "max_queue": 10**9},
                    {"Authorization": f"Bearer {ADMIN}"})["data"]["apiKey"])


def _in_progress(base: str, key: str) -> float:
    """The jobs admitted so far (none has run: the servers measured have no worker)."""
    info = call(f"{base}/midjourney/v1/info", None, {"TT-API-KEY": key})
    return float(info["data"]["in_progress"])


#: product -> (submit path, wrk script, fetch path, body of the job whose fetch is timed)
PRODUCTS = {
    "midjourney": ("/midjourney/v1/imagine", "submit.lua", "/midjourney/v1/fetch",
                   {"prompt": "fetch me"}),
    "flux": ("/flux/generate", "flux_submit.lua", "/flux/fetch",
             {"prompt": "fetch me", "mode": "flux1-dev"}),
}


def bench_gengate(seconds: int, anchor: Anchor) -> dict[str, dict[str, dict[str, float]]]:
    """Per product: submit, and fetch of a queued job, on an API-only server (so no
    rendering shares the cores); then fetch of a finished job on a server with its worker,
    after it went idle. Each load between two measurements of the bare app."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in PRODUCTS}
    with tempfile.TemporaryDirectory(prefix="gengate-bench-") as data:
        proc = _serve(data, port, worker=False)
        try:
            wait_up(f"{base}/healthz", proc)
            key = _user(base)
            for name, (submit_path, script, fetch_path, body) in PRODUCTS.items():
                before = anchor.taken[-1]
                out[name]["submit"] = anchor.around(load(
                    proc, f"{base}{submit_path}", seconds, script, {"GG_KEY": key}), before)
                out[name]["submit"]["jobs_in_db"] = _in_progress(base, key)
                job = call(f"{base}{submit_path}", body, {"TT-API-KEY": key})["data"]["jobId"]
                before = anchor.taken[-1]
                out[name]["fetch"] = anchor.around(load(
                    proc, f"{base}{fetch_path}?jobId={job}", seconds, "fetch.lua",
                    {"GG_KEY": key}), before)
        finally:
            stop(proc)
    with tempfile.TemporaryDirectory(prefix="gengate-bench-") as data:
        proc = _serve(data, port, worker=True)
        try:
            wait_up(f"{base}/healthz", proc)
            key = _user(base)
            for name, (submit_path, _, fetch_path, body) in PRODUCTS.items():
                job = call(f"{base}{submit_path}", body, {"TT-API-KEY": key})["data"]["jobId"]
                while call(f"{base}{fetch_path}?jobId={job}", None,
                           {"TT-API-KEY": key})["status"] != "SUCCESS":
                    time.sleep(0.1)
                before = anchor.measure()  # the worker went idle while the bare app ran
                out[name]["fetch_finished"] = anchor.around(load(
                    proc, f"{base}{fetch_path}?jobId={job}", seconds, "fetch.lua",
                    {"GG_KEY": key}), before)
        finally:
            stop(proc)
    return out


async def _admin_sql(base: str, sql: str) -> None:
    conn = await asyncpg.connect(base.replace("postgresql://", "postgres://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_database(base: str) -> Iterator[str]:
    """A new database on the server of ``base``, migrated; dropped afterwards."""
    name = f"gengate_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_sql(base, f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        with tempfile.TemporaryDirectory(prefix="gengate-bench-") as data:
            subprocess.run([sys.executable, "-m", "gengate", "migrate"], check=True,
                           capture_output=True, env={**os.environ, "GENGATE_DATABASE_URL": url,
                                                     "GENGATE_DATA_DIR": data})
        yield url
    finally:
        asyncio.run(_admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def bench_postgres(seconds: int, base: str, anchor: Anchor) -> dict[str, dict[str, float]]:
    """Midjourney's submit, and fetch of a queued job, on PostgreSQL: the same loads as on
    SQLite, against one API-only process, each between two measurements of the bare app."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    submit_path, script, fetch_path, body = PRODUCTS["midjourney"]
    out: dict[str, dict[str, float]] = {}
    with postgres_database(base) as database, \
            tempfile.TemporaryDirectory(prefix="gengate-bench-") as data:
        proc = _serve(data, port, worker=False, database_url=database)
        try:
            wait_up(f"{url}/healthz", proc)
            key = _user(url)
            before = anchor.taken[-1]
            out["submit"] = anchor.around(load(proc, f"{url}{submit_path}", seconds, script,
                                               {"GG_KEY": key}), before)
            out["submit"]["jobs_in_db"] = _in_progress(url, key)
            job = call(f"{url}{submit_path}", body, {"TT-API-KEY": key})["data"]["jobId"]
            before = anchor.taken[-1]
            out["fetch"] = anchor.around(load(proc, f"{url}{fetch_path}?jobId={job}", seconds,
                                              "fetch.lua", {"GG_KEY": key}), before)
        finally:
            stop(proc)
    return out


def postgres_reachable(base: str) -> bool:
    try:
        asyncio.run(_admin_sql(base, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def judged(kind: str, figures: dict[str, float]) -> str:
    """One figure with its ratio to the bare app measured around it, and its target."""
    ratio = figures["rps"] / figures["bare_rps"]
    least, most_ms = TARGETS[kind]
    met = ratio >= least and figures["p99_ms"] < most_ms and not figures["errors"]
    return (f"{figures['rps']:,.0f} req/s = {ratio:.0%} of bare's {figures['bare_rps']:,.0f} "
            f"(target >= {least:.0%}), p99 {figures['p99_ms']:.1f} ms (target < "
            f"{most_ms:.0f} ms), non-2xx {figures['errors']:.0f}: {'met' if met else 'NOT met'}"
            f"; CPU {figures['cpu_us']:.0f} us/request, bare's "
            f"{figures['bare_cpu_us'] / figures['cpu_us']:.0%} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", default=os.environ.get("GENGATE_TEST_POSTGRES_URL",
                                                             POSTGRES),
                        help="PostgreSQL server (a database on it is made and dropped)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (the Makefile does this as root)")
    postgres = not args.no_postgres
    if postgres and not postgres_reachable(args.postgres):
        print(f"PostgreSQL is not reachable at {args.postgres}: its figures are SKIPPED "
              "(--postgres URL, or --no-postgres)", flush=True)
        postgres = False
    labels = (("submit", "submit"), ("fetch", "fetch queued job"),
              ("fetch_finished", "fetch finished job"))
    rounds = []
    for n in range(1, args.rounds + 1):
        anchor = Anchor(args.seconds)
        try:
            first = anchor.measure()
            gengate = bench_gengate(args.seconds, anchor)
            pg = bench_postgres(args.seconds, args.postgres, anchor) if postgres else None
        finally:
            anchor.close()
        row: dict[str, object] = {"round": n, "bare_asgi": anchor.taken}
        line = [f"round {n}: bare ASGI {first['rps']:,.0f} req/s at first, "
                f"{min(a['rps'] for a in anchor.taken):,.0f} to "
                f"{max(a['rps'] for a in anchor.taken):,.0f} over the round"]
        for name, figures in gengate.items():
            row[name] = figures
            for kind, label in labels:
                row[f"{name}_{kind}_ratio"] = figures[kind]["rps"] / figures[kind]["bare_rps"]
                line.append(f"SQLite {name} {label}: {judged(kind, figures[kind])}")
        if pg is not None:
            row["postgres"] = pg
            for kind, label in labels[:2]:
                row[f"postgres_{kind}_ratio"] = pg[kind]["rps"] / pg[kind]["bare_rps"]
                line.append(f"PostgreSQL midjourney {label}: {judged(kind, pg[kind])}")
        rounds.append(row)
        print("\n  ".join(line), flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(
        {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": args.seconds,
         "load_average": os.getloadavg(), "rounds": rounds}, indent=2))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print("targets: submit >= 25% of bare, fetch (queued or finished) >= 50% of bare, each "
          "with p99 < 30 ms (set for SQLite; PostgreSQL is reported beside it); load "
          f"average now {load} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
