"""``make bench``: what the largest accepted inputs cost the server, next to anchors of the
same run.

* **stall**: ``/healthz`` latency while one client sends the largest accepted prompt to
  ``promptCheck`` in a loop, next to ``/healthz`` on the idle server and while the same loop
  sends a short prompt (what any busy client costs). Two large prompts: 6,000
  characters of single letters (``a b a b ...``, the word filter's worst case) and a
  permutation prompt that expands to 40 prompts of 600 characters (the most permutations may
  expand to: 24,000 characters, each prompt checked). Target: p99 under 20 ms.
* **bloat**: the server's peak resident memory (``VmHWM``) while eight clients blend the
  largest accepted images in a loop (two 4096 x 4096 PNGs per request, as large in bytes as
  the 16 MiB body limit lets two images be), next to its resident memory when idle after
  start-up. Target: peak under 500 MB.

gengate runs as ``gengate serve`` (API and worker in one process, SQLite, the local provider)
on 127.0.0.1. Results go to ``bench/results/hostile.json``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from run import ADMIN, call, free_port, start, stop, wait_up  # noqa: E402

HERE = Path(__file__).parent
SHORT = "a red fox in the snow --ar 3:2"  # the anchor: the same loop, a usual prompt
LETTERS = ("a b " * 1500)[:6000]
PERMUTATIONS = "{a,b,c,d,e}{f,g,h,i,j,k,l,m} " + ("a b " * 150)[:597]  # 24,000 expanded
BODY_LIMIT = 16 * 1024 * 1024
#: more environment for the server, e.g. BENCH_SERVER_ENV="MALLOC_ARENA_MAX=2"
EXTRA_ENV = dict(item.split("=", 1) for item in os.environ.get("BENCH_SERVER_ENV", "").split())


def serve(data: str, port: int, worker: bool = True) -> subprocess.Popen[bytes]:
    env = {"GENGATE_DATA_DIR": data, "GENGATE_ADMIN_KEY": ADMIN, "GENGATE_PORT": str(port),
           "GENGATE_RATE_PER_SECOND": "0", "GENGATE_RATE_PER_MINUTE": "0",
           "GENGATE_LOCAL_DELAY": "0", **EXTRA_ENV}
    return start([sys.executable, "-m", "gengate", "serve", *([] if worker else ["--no-worker"])],
                 port, env)


def user(base: str, email: str) -> str:
    return str(call(f"{base}/admin/users", {"email": email, "balance": 10**9,
                                            "max_queue": 10**6},
                    {"Authorization": f"Bearer {ADMIN}"})["data"]["apiKey"])


def post(conn: http.client.HTTPConnection, path: str, body: bytes, key: str) -> int:
    conn.request("POST", path, body, {"Content-Type": "application/json", "TT-API-KEY": key})
    response = conn.getresponse()
    response.read()
    return response.status


def healthz_latencies(port: int, seconds: float) -> list[float]:
    """Milliseconds per ``/healthz``, one request every 10 ms on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        out.append((time.perf_counter() - began) * 1000)
        time.sleep(0.01)
    conn.close()
    return out


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"n": len(ordered), "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "max_ms": ordered[-1]}


def bench_stall(seconds: float) -> dict[str, dict[str, float]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="gengate-bench-") as data:
        proc = serve(data, port)
        try:
            wait_up(f"{base}/healthz", proc)
            key = user(base, "stall@example.com")
            out["idle"] = summary(healthz_latencies(port, seconds))
            for name, prompt in (("short", SHORT), ("letters", LETTERS),
                                 ("permutations", PERMUTATIONS)):
                body = json.dumps({"prompt": prompt}).encode()
                stop_flag = threading.Event()
                sent: list[int] = []

                def abuse(body: bytes = body, flag: threading.Event = stop_flag,
                          sent: list[int] = sent) -> None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    while not flag.is_set():
                        sent.append(post(conn, "/midjourney/v1/promptCheck", body, key))
                    conn.close()

                thread = threading.Thread(target=abuse)
                thread.start()
                try:
                    row = summary(healthz_latencies(port, seconds))
                finally:
                    stop_flag.set()
                    thread.join()
                row["prompt_chars"] = len(prompt)
                row["checks"] = len(sent)
                row["checks_ok"] = sent.count(200)
                out[name] = row
        finally:
            stop(proc)
    return out


def largest_image(seed: int) -> str:
    """A 4096 x 4096 PNG as a data URL, as many bytes as two fit in the body limit: random
    rows (incompressible) over a flat rest."""
    width = height = 4096
    budget = (BODY_LIMIT - 4096) // 2 * 3 // 4  # decoded bytes per image
    rows = budget // (width * 3)
    rng = random.Random(seed)
    while True:
        image = Image.new("RGB", (width, height), (90, 120, 150))
        image.paste(Image.frombytes("RGB", (width, rows), rng.randbytes(width * rows * 3)))
        buffer = io.BytesIO()
        image.save(buffer, "PNG", compress_level=1)
        if buffer.tell() <= budget:
            return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        rows -= (buffer.tell() - budget) // (width * 3) + 1


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found")


def bench_bloat(seconds: float, clients: int, worker: bool = True) -> dict[str, object]:
    images = [largest_image(1), largest_image(2)]
    body = json.dumps({"imgBase64Array": images}).encode()
    assert len(body) <= BODY_LIMIT, len(body)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="gengate-bench-") as data:
        proc = serve(data, port, worker)
        try:
            wait_up(f"{base}/healthz", proc)
            keys = [user(base, f"blend{i}@example.com") for i in range(clients)]
            idle = rss_mb(proc.pid, "VmRSS")
            statuses: list[int] = []
            end = time.monotonic() + seconds

            def blend(key: str) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                while time.monotonic() < end:
                    statuses.append(post(conn, "/midjourney/v1/blend", body, key))
                conn.close()

            threads = [threading.Thread(target=blend, args=(key,)) for key in keys]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            peak = rss_mb(proc.pid, "VmHWM")
            after = rss_mb(proc.pid, "VmRSS")
        finally:
            stop(proc)
    return {"clients": clients, "body_mb": len(body) / 2**20, "requests": len(statuses),
            "accepted": statuses.count(200), "other": sorted(set(statuses) - {200}),
            "idle_rss_mb": idle, "peak_rss_mb": peak, "rss_after_mb": after,
            "peak_over_idle": peak / idle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    stall = bench_stall(args.seconds)
    idle = stall["idle"]
    print(f"stall: /healthz idle p99 {idle['p99_ms']:.1f} ms (p50 {idle['p50_ms']:.1f})")
    short = stall["short"]
    for name in ("short", "letters", "permutations"):
        row = stall[name]
        print(f"stall: /healthz p99 {row['p99_ms']:.1f} ms, max {row['max_ms']:.1f} ms "
              f"({row['p99_ms'] / idle['p99_ms']:.1f}x idle, "
              f"{row['p99_ms'] / short['p99_ms']:.1f}x short) while promptCheck loops on "
              f"{row['prompt_chars']} chars of {name} ({row['checks']} checks, "
              f"{row['checks_ok']} answered 200); target p99 < 20 ms", flush=True)
    bloat = bench_bloat(args.seconds, args.clients)
    print(f"bloat: {bloat['clients']} clients blending {bloat['body_mb']:.1f} MiB bodies "
          f"({bloat['requests']} requests, {bloat['accepted']} accepted, other statuses "
          f"{bloat['other']}): peak RSS {bloat['peak_rss_mb']:.0f} MB, idle "
          f"{bloat['idle_rss_mb']:.0f} MB ({bloat['peak_over_idle']:.1f}x), after "
          f"{bloat['rss_after_mb']:.0f} MB; target peak < 500 MB", flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "hostile.json").write_text(json.dumps(
        {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": args.seconds,
         "cpus": os.cpu_count(), "stall": stall, "bloat": bloat}, indent=2))


if __name__ == "__main__":
    main()
