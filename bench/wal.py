"""SQLite's write-ahead log under a sustained submit load at full speed.

One ``gengate serve --no-worker`` on SQLite takes submits from wrk (2 threads, 64
connections, ``submit.lua``) for ``--seconds``; a thread samples the size of the WAL file
every 100 ms. Reported: the WAL's largest size (target: under 64 MB) and the submit
throughput of the same run, as a ratio of a bare ASGI app measured in the same run. With
``--baseline-src DIR`` the same load also runs against the gengate sources in ``DIR`` (for
example a checkout from before a change), so both sides are measured on the same machine
at the same time. Results go to ``bench/results/wal.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from run import HERE, _user, bench_bare, free_port, start, stop, wait_up, wrk  # noqa: E402

MB = 1024 * 1024
#: the WAL's largest size that counts as bounded
TARGET_MB = 64


class WalSampler:
    """The largest size the WAL file had, looked at every ``every`` seconds."""

    def __init__(self, path: Path, every: float = 0.1):
        self.path = path
        self.every = every
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WalSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.largest = max(self.largest, self.path.stat().st_size)
            except FileNotFoundError:
                pass


def bench_wal(seconds: int, src: str | None) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="gengate-wal-") as data:
        env = {"GENGATE_DATA_DIR": data, "GENGATE_ADMIN_KEY": "bench-admin-key",
               "GENGATE_PORT": str(port), "GENGATE_RATE_PER_SECOND": "0",
               "GENGATE_RATE_PER_MINUTE": "0"}
        if src is not None:
            env["PYTHONPATH"] = src
        proc = start([sys.executable, "-m", "gengate", "serve", "--no-worker"], port, env)
        try:
            wait_up(f"{base}/healthz", proc)
            key = _user(base)
            wal = Path(data) / "gengate.db-wal"
            with WalSampler(wal) as sampler:
                submit = wrk(f"{base}/midjourney/v1/imagine", seconds, "submit.lua",
                             {"GG_KEY": key})
            db = (Path(data) / "gengate.db").stat().st_size
        finally:
            stop(proc)
    return {"wal_max_mb": sampler.largest / MB, "db_mb": db / MB, "submit_rps": submit["rps"],
            "submit_p99_ms": submit["p99_ms"], "errors": submit["errors"]}


def _line(name: str, r: dict[str, float], bare: float) -> str:
    return (f"{name}: WAL max {r['wal_max_mb']:,.1f} MB (database {r['db_mb']:,.1f} MB) | "
            f"submit {r['submit_rps']:,.0f} req/s ({r['submit_rps'] / bare:.0%} of bare, "
            f"p99 {r['submit_p99_ms']:.1f} ms, non-2xx {r['errors']:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=600, help="length of the submit load")
    parser.add_argument("--baseline-src", help="also measure the gengate sources in this "
                        "directory (its src/), e.g. a checkout from before a change")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (the Makefile does this as root)")
    bare = bench_bare(10)["rps"]
    out: dict[str, object] = {"when": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "seconds": args.seconds, "bare_asgi_rps": bare}
    current = bench_wal(args.seconds, os.environ.get("PYTHONPATH"))
    out["gengate"] = current
    print(_line("gengate", current, bare), flush=True)
    if args.baseline_src:
        baseline = bench_wal(args.seconds, args.baseline_src)
        out["baseline"] = {**baseline, "src": args.baseline_src}
        print(_line(f"baseline ({args.baseline_src})", baseline, bare), flush=True)
        print(f"submit throughput: {current['submit_rps'] / baseline['submit_rps']:.0%} of the "
              "baseline's", flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "wal.json").write_text(json.dumps(out, indent=2))
    print(f"target: WAL max < {TARGET_MB} MB with submit throughput unchanged "
          f"({'met' if current['wal_max_mb'] < TARGET_MB else 'MISSED'})")


if __name__ == "__main__":
    main()
