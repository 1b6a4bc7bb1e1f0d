"""``make bench``: submit throughput with an API key that has every limit set, next to a
key with none, on the same server in the same run.

One API-only gengate (SQLite, ``--no-worker``) serves both keys; wrk drives
``/midjourney/v1/imagine`` with 2 threads and 64 connections, alternating the keys in the
order plain, limited, limited, plain, ... so that a growing database weighs on both alike.
The limited key has allowed products, model patterns, allowed addresses, an expiry, day,
month and total spend caps and its own rate limits (all high enough never to refuse).
Target: the limited key's throughput is at least 90 % of the plain one's. Results go to
``bench/results/keys.json``.

Request rate limits are not new with key limits: every key is counted against the
deployment's (``GENGATE_RATE_PER_SECOND``/``_PER_MINUTE``, on by default) or its own. So the
server runs with the deployment's limits on (set too high to refuse), and both keys are
counted; what differs is only what a key's own limits add.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from run import ADMIN, HERE, _user, call, free_port, start, stop, wait_up, wrk  # noqa: E402

#: every limit a key can have, each set but none ever reached during the run
LIMITS: dict[str, Any] = {
    "name": "bench: every limit", "products": ["midjourney", "llm"],
    "models": ["claude-*", "gpt-4o*"], "cidrs": ["127.0.0.0/8", "::1/128"],
    "expiresAt": time.time() + 86400, "capDay": 10**8, "capMonth": 10**8, "capTotal": 10**8,
    "ratePerSecond": 10**6, "ratePerMinute": 10**8,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (the Makefile does this as root)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "limited": []}
    with tempfile.TemporaryDirectory(prefix="gengate-bench-") as data:
        env = {"GENGATE_DATA_DIR": data, "GENGATE_ADMIN_KEY": ADMIN,
               "GENGATE_PORT": str(port), "GENGATE_RATE_PER_SECOND": str(10**6),
               "GENGATE_RATE_PER_MINUTE": str(10**8)}
        proc = start([sys.executable, "-m", "gengate", "serve", "--no-worker"], port, env)
        try:
            wait_up(f"{base}/healthz", proc)
            plain = _user(base)
            users = call(f"{base}/admin/users", None, {"Authorization": f"Bearer {ADMIN}"})
            uid = users["data"][0]["userId"]
            limited = call(f"{base}/admin/users/{uid}/keys", LIMITS,
                           {"Authorization": f"Bearer {ADMIN}"})["data"]["apiKey"]
            order = [("plain", plain), ("limited", limited)]
            for n in range(1, args.rounds + 1):
                # ABBA: neither key always runs on the larger database
                for name, key in (order if n % 2 else order[::-1]):
                    result = wrk(f"{base}/midjourney/v1/imagine", args.seconds, "submit.lua",
                                 {"GG_KEY": key})
                    runs[name].append(result)
                    print(f"round {n}: {name:8} submit {result['rps']:,.0f} req/s, p99 "
                          f"{result['p99_ms']:.1f} ms, non-2xx {result['errors']}", flush=True)
        finally:
            stop(proc)
    mean = {name: sum(r["rps"] for r in rs) / len(rs) for name, rs in runs.items()}
    ratio = mean["limited"] / mean["plain"]
    print(f"key with every limit: {ratio:.1%} of a key with none "
          f"({mean['limited']:,.0f} vs {mean['plain']:,.0f} req/s); target >= 90%")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "keys.json").write_text(json.dumps(
        {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": args.seconds,
         "runs": runs, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
