"""``make bench``: gengate's submit and fetch throughput, for Midjourney and Flux, next to a
bare ASGI app, in one run.

Every server runs as one uvicorn process (uvloop, httptools) on 127.0.0.1; wrk drives it
with 2 threads and 64 connections. gengate runs on SQLite with ``--no-worker`` so that the
figures are the API's own (auth, admission, freeze, insert); the worker's image rendering
would otherwise share the same two cores. Results go to ``bench/results/``.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).parent
ADMIN = "bench-admin-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
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
    return {"rps": float(rps.group(1)), "p99_ms": float(p99.group(1)) * scale,
            "errors": int(non2xx.group(1)) if non2xx else 0}


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


def _serve(data: str, port: int, worker: bool) -> subprocess.Popen[bytes]:
    env = {"GENGATE_DATA_DIR": data, "GENGATE_ADMIN_KEY": ADMIN, "GENGATE_PORT": str(port),
           "GENGATE_RATE_PER_SECOND": "0", "GENGATE_RATE_PER_MINUTE": "0"}
    args = [sys.executable, "-m", "gengate", "serve", *([] if worker else ["--no-worker"])]
    return start(args, port, env)


def _user(base: str) -> str:
    return str(call(f"{base}/admin/users", {"email": "bench@example.com", "balance": 10**9,
                                            "max_queue": 10**9},
                    {"Authorization": f"Bearer {ADMIN}"})["data"]["apiKey"])


#: product -> (submit path, wrk script, fetch path, body of the job whose fetch is timed)
PRODUCTS = {
    "midjourney": ("/midjourney/v1/imagine", "submit.lua", "/midjourney/v1/fetch",
                   {"prompt": "fetch me"}),
    "flux": ("/flux/generate", "flux_submit.lua", "/flux/fetch",
             {"prompt": "fetch me", "mode": "flux1-dev"}),
}


def bench_gengate(seconds: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per product: submit, and fetch of a queued job, on an API-only server (so no
    rendering shares the cores); then fetch of a finished job on a server with its worker,
    after it went idle."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in PRODUCTS}
    with tempfile.TemporaryDirectory(prefix="gengate-bench-") as data:
        proc = _serve(data, port, worker=False)
        try:
            wait_up(f"{base}/healthz", proc)
            key = _user(base)
            for name, (submit_path, script, fetch_path, body) in PRODUCTS.items():
                out[name]["submit"] = wrk(f"{base}{submit_path}", seconds, script,
                                          {"GG_KEY": key})
                job = call(f"{base}{submit_path}", body, {"TT-API-KEY": key})["data"]["jobId"]
                out[name]["fetch"] = wrk(f"{base}{fetch_path}?jobId={job}", seconds,
                                         "fetch.lua", {"GG_KEY": key})
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
                out[name]["fetch_finished"] = wrk(f"{base}{fetch_path}?jobId={job}", seconds,
                                                  "fetch.lua", {"GG_KEY": key})
        finally:
            stop(proc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (the Makefile does this as root)")
    rounds = []
    for n in range(1, args.rounds + 1):
        bare = bench_bare(args.seconds)
        gengate = bench_gengate(args.seconds)
        row: dict[str, object] = {"round": n, "bare_asgi": bare}
        line = [f"round {n}: bare ASGI {bare['rps']:,.0f} req/s"]
        for name, figures in gengate.items():
            row[name] = figures
            for kind, label in (("submit", "submit"), ("fetch", "fetch queued job"),
                                ("fetch_finished", "fetch finished job")):
                ratio = figures[kind]["rps"] / bare["rps"]
                row[f"{name}_{kind}_ratio"] = ratio
                line.append(f"{name} {label} {figures[kind]['rps']:,.0f} req/s ({ratio:.0%} "
                            f"of bare, p99 {figures[kind]['p99_ms']:.1f} ms, non-2xx "
                            f"{figures[kind]['errors']:.0f})")
        rounds.append(row)
        print("\n  ".join(line), flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(
        {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": args.seconds,
         "rounds": rounds}, indent=2))
    print("targets: submit >= 25% of bare with p99 < 30 ms; fetch >= 50% of bare")


if __name__ == "__main__":
    main()
