"""``make bench``: 1,000 synchronous requests held open at once on one API process.

On PostgreSQL (``GENGATE_TEST_POSTGRES_URL``, default postgresql://postgres@127.0.0.1/test),
one API process (``gengate serve --no-worker``) holds the requests and a second process's
worker runs the jobs on the built-in renderer slowed by ``GENGATE_LOCAL_DELAY``: the API
process learns of each end by ``NOTIFY``. The bench opens ``--requests`` connections (1,000)
and sends ``POST /gemini/image/generate`` on each at once. It reports:

* **memory**: the server's resident memory (``VmRSS``) at its highest while the requests are
  held, next to the same process idle after a warm-up request (the anchor). Target: growth
  under 100 MB for the 1,000.
* **end to response**: for each request, the time from the job's end (the commit that ends
  it, seen here as its ``NOTIFY gengate_job_ended`` arriving on the bench's own listening
  connection) to the client holding the answer. Target: p99 under 50 ms. Anchor:
  ``/healthz`` round trips on the idle server.
* **the rest stays fast**: ``/healthz`` and ``/gemini/image/fetch`` round trips while the
  1,000 are held, next to the same on the idle server.

Results go to ``bench/results/sync.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
from run import ADMIN, call, free_port, start, stop, wait_up  # noqa: E402
from scale import fresh  # noqa: E402

from gengate.store.channels import ENDED_CHANNEL  # noqa: E402

HERE = Path(__file__).parent
PATH = "/gemini/image/generate"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(pct(values, 0.5), 2),
            "p99_ms": round(pct(values, 0.99), 2), "max_ms": round(max(values), 2),
            "mean_ms": round(statistics.fmean(values), 2)}


def round_trips(port: int, path: str, key: str, seconds: float,
                stop_at: threading.Event | None = None) -> list[float]:
    """Milliseconds per GET, one every 10 ms on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stop_at is not None and stop_at.is_set()):
        began = time.perf_counter()
        conn.request("GET", path, headers={"TT-API-KEY": key})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        out.append((time.perf_counter() - began) * 1000)
        time.sleep(0.01)
    conn.close()
    return out


async def held_request(port: int, key: str, index: int, sent: asyncio.Event,
                       count: list[int], total: int) -> tuple[str, float, int]:
    """One synchronous request on its own connection: (jobId, time answered, status)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"prompt": f"a lighthouse number {index}",
                       "model": "gemini-2.5-flash-image"}).encode()
    writer.write((f"POST {PATH} HTTP/1.1\r\nHost: bench\r\nTT-API-KEY: {key}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n").encode() + body)
    await writer.drain()
    count[0] += 1
    if count[0] == total:
        sent.set()
    head = await reader.readuntil(b"\r\n\r\n")
    answered = time.time()
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    payload = json.loads(await reader.readexactly(length))
    writer.close()
    return str(payload.get("jobId") or payload.get("data", {}).get("jobId")), answered, status


async def hold(port: int, key: str, total: int, pid: int, sample: float, url: str
               ) -> tuple[list[tuple[str, float, int]], float, list[float], list[float],
                          dict[str, float]]:
    # a job's end is the commit that ends it: the moment its NOTIFY arrives here
    ended: dict[str, float] = {}
    listener = await asyncpg.connect(url.replace("postgresql://", "postgres://"))

    def heard(_conn: object, _pid: int, _channel: str, job_id: object) -> None:
        ended.setdefault(str(job_id), time.time())

    await listener.add_listener(ENDED_CHANNEL, heard)
    sent = asyncio.Event()
    count = [0]
    tasks = [asyncio.create_task(held_request(port, key, i, sent, count, total))
             for i in range(total)]
    await sent.wait()
    peak = rss_mb(pid)
    done = threading.Event()
    box: dict[str, list[float]] = {}
    first = await asyncio.to_thread(call, f"http://127.0.0.1:{port}/jobs/list?limit=1",
                                    None, {"TT-API-KEY": key})
    some_job = first["data"][0]["jobId"]

    def probe(name: str, path: str) -> None:
        box[name] = round_trips(port, path, key, sample, done)

    threads = [threading.Thread(target=probe, args=("healthz", "/healthz")),
               threading.Thread(target=probe, args=(
                   "fetch", f"/gemini/image/fetch?jobId={some_job}"))]
    for thread in threads:
        thread.start()
    pending = set(tasks)
    while pending:
        finished, pending = await asyncio.wait(pending, timeout=0.1)
        peak = max(peak, rss_mb(pid))
        if finished and not done.is_set():
            done.set()  # the first answers: the hold is over
    for thread in threads:
        thread.join()
    await listener.close()
    return [t.result() for t in tasks], peak, box["healthz"], box["fetch"], ended


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=10.0,
                        help="seconds the built-in renderer takes per job")
    args = parser.parse_args()
    base_url = os.environ.get("GENGATE_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
    port, worker_port = free_port(), free_port()
    with fresh(base_url) as (url, data):
        env = {"GENGATE_DATABASE_URL": url, "GENGATE_DATA_DIR": data,
               "GENGATE_ADMIN_KEY": ADMIN, "GENGATE_RATE_PER_SECOND": "0",
               "GENGATE_RATE_PER_MINUTE": "0", "GENGATE_IP_RATE_PER_SECOND": "0",
               "GENGATE_LOCAL_DELAY": str(args.delay), "GENGATE_LOCAL_STEPS": "1",
               "GENGATE_LOCAL_SCALE": "0.05", "GENGATE_LOCAL_SLOTS": str(args.requests * 2),
               "GENGATE_WORKER_CONCURRENCY": str(args.requests * 2),
               "GENGATE_SYNC_TIMEOUT": "300"}
        # the API process holds the requests; another process's worker runs the jobs
        proc = start([sys.executable, "-m", "gengate", "serve", "--no-worker"], port,
                     {**env, "GENGATE_PORT": str(port)})
        worker = start([sys.executable, "-m", "gengate", "serve"], worker_port,
                       {**env, "GENGATE_PORT": str(worker_port)})
        try:
            base = f"http://127.0.0.1:{port}"
            wait_up(f"{base}/healthz", proc)
            wait_up(f"http://127.0.0.1:{worker_port}/healthz", worker)
            key = str(call(f"{base}/admin/users", {"email": "sync@bench", "balance": 10**9,
                                                   "max_queue": 10**6},
                           {"Authorization": f"Bearer {ADMIN}"})["data"]["apiKey"])
            for _ in range(2):  # the synchronous path, warm
                warm = asyncio.run(held_request(port, key, 0, asyncio.Event(), [0], 2))[0]
            idle_healthz = round_trips(port, "/healthz", key, 3.0)
            idle_fetch = round_trips(port, f"/gemini/image/fetch?jobId={warm}", key, 3.0)
            idle_rss = rss_mb(proc.pid)
            began = time.monotonic()
            answers, peak, busy_healthz, busy_fetch, ended = asyncio.run(
                hold(port, key, args.requests, proc.pid, args.delay * 2, url))
            held_for = time.monotonic() - began
        finally:
            stop(proc)
            stop(worker)
        statuses = sorted({status for _, _, status in answers})
    lags = [(answered - ended[job_id]) * 1000 for job_id, answered, status in answers
            if status == 200 and job_id in ended]
    result: dict[str, Any] = {
        "requests": args.requests, "renderer_delay_s": args.delay,
        "statuses": statuses, "answered_200": sum(1 for a in answers if a[2] == 200),
        "held_for_s": round(held_for, 1),
        "memory": {"idle_rss_mb": round(idle_rss, 1), "peak_rss_mb": round(peak, 1),
                   "growth_mb": round(peak - idle_rss, 1),
                   "growth_kb_per_request": round((peak - idle_rss) * 1024 / args.requests, 1),
                   "peak_over_idle": round(peak / idle_rss, 2)},
        "end_to_response": summary(lags),
        "healthz_idle": summary(idle_healthz), "healthz_while_held": summary(busy_healthz),
        "fetch_idle": summary(idle_fetch), "fetch_while_held": summary(busy_fetch),
    }
    result["ratios"] = {
        "end_to_response_p99_over_idle_healthz_p99": round(
            result["end_to_response"]["p99_ms"] / result["healthz_idle"]["p99_ms"], 1),
        "healthz_p99_held_over_idle": round(
            result["healthz_while_held"]["p99_ms"] / result["healthz_idle"]["p99_ms"], 1),
        "fetch_p99_held_over_idle": round(
            result["fetch_while_held"]["p99_ms"] / result["fetch_idle"]["p99_ms"], 1),
    }
    out = HERE / "results" / "sync.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
