"""``make bench`` (LLM part): the relay next to the fake upstream answered directly, the
bare pooled relay and LiteLLM's proxy, in one run.

Non-streaming ``/v1/messages`` throughput with wrk at concurrency 32, and the time to the
first streamed byte with 1 and 16 concurrent streams, each measured directly against the
fake upstream and through the relay; the difference is what the relay adds. The design's
relay anchor, a bare ASGI app forwarding with one pooled client (no auth, no billing), is
measured for throughput in the same run.

On a shared machine the load of other processes drifts by more than the differences
measured, so the fake, the bare relay and gengate all run at once, and the measurements
alternate: ``--rounds`` rounds of direct, bare relay and gengate throughput, one after the
other, whose medians are compared; and first-byte samples taken in pairs (one direct, one
through gengate, back to back), whose added time is the median of the pairs' differences.
LiteLLM goes into its own virtual environment (``.bench-venv-litellm``); if it cannot be
installed in time, its figures are reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import ADMIN, HERE, call, free_port, start, stop, wait_up, wrk  # noqa: E402

LITELLM_VENV = HERE.parent / ".bench-venv-litellm"
BODY = {"model": "claude-fake-1", "max_tokens": 64, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}


async def _first_byte(port: int, key: str) -> float:
    payload = json.dumps(BODY).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json"
            f"\r\nx-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n"
            f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n").encode()
    t0 = time.perf_counter()
    writer.write(head + payload)
    await reader.readuntil(b"\r\n\r\n")
    await reader.readuntil(b"data:")  # the first event's payload
    elapsed = time.perf_counter() - t0
    writer.close()
    return elapsed * 1000


async def _ttfb(port: int, key: str, streams: int, rounds: int) -> float:
    samples: list[float] = []
    for _ in range(rounds):
        samples += await asyncio.gather(*(_first_byte(port, key) for _ in range(streams)))
    return statistics.median(samples)


async def _ttfb_pairs(direct: tuple[int, str], relay: tuple[int, str], streams: int,
                      rounds: int) -> dict[str, float]:
    """Medians of the direct and relayed first-byte times and of their paired differences,
    the two taken back to back in each round (in alternating order)."""
    base: list[float] = []
    through: list[float] = []
    added: list[float] = []
    for n in range(rounds):
        first, second = (direct, relay) if n % 2 == 0 else (relay, direct)
        a = await asyncio.gather(*(_first_byte(*first) for _ in range(streams)))
        b = await asyncio.gather(*(_first_byte(*second) for _ in range(streams)))
        d, g = (a, b) if first is direct else (b, a)
        base += d
        through += g
        added.append(statistics.median(g) - statistics.median(d))
    return {"direct_ms": statistics.median(base), "gengate_ms": statistics.median(through),
            "added_ms": statistics.median(added)}


def measure(port: int, key: str, seconds: int) -> dict[str, float]:
    env = {"GG_KEY": key}
    url = f"http://127.0.0.1:{port}/v1/messages"
    out = wrk(url, seconds, "messages.lua", env, connections=32)
    out["ttfb1_ms"] = asyncio.run(_ttfb(port, key, 1, 200))
    out["ttfb16_ms"] = asyncio.run(_ttfb(port, key, 16, 20))
    return out


def _rps(port: int, key: str, seconds: int) -> float:
    return wrk(f"http://127.0.0.1:{port}/v1/messages", seconds, "messages.lua",
               {"GG_KEY": key}, connections=32)["rps"]


def litellm(fake_port: int, seconds: int, install_timeout: int) -> Mapping[str, object]:
    py = LITELLM_VENV / "bin" / "python"
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "litellm[proxy]"], check=True,
                       timeout=install_timeout, capture_output=True)
    except (subprocess.SubprocessError, OSError) as exc:
        return {"skipped": f"installing litellm failed: {type(exc).__name__}"}
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as cfg:
        cfg.write(f"model_list:\n  - model_name: claude-fake-1\n    litellm_params:\n"
                  f"      model: anthropic/claude-fake-1\n"
                  f"      api_base: http://127.0.0.1:{fake_port}\n      api_key: sk-fake\n")
    master = f"sk-{secrets.token_hex(32)}"  # LiteLLM refuses to start without one
    proc = start([str(LITELLM_VENV / "bin" / "litellm"), "--config", cfg.name, "--port",
                  str(port), "--num_workers", "1"], port, {"LITELLM_MASTER_KEY": master})
    try:
        wait_up(f"http://127.0.0.1:{port}/health/liveliness", proc)
        return measure(port, master, seconds)
    except SystemExit as exc:
        return {"skipped": f"litellm proxy did not serve: {exc}"}
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="per throughput measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--install-timeout", type=int, default=300)
    args = parser.parse_args()
    fake_port = free_port()
    procs = [start([sys.executable, str(HERE / "llm_fake.py"), str(fake_port)], fake_port, {})]
    try:
        time.sleep(1.0)
        bare_port, bare = start_bare_relay(fake_port)
        procs.append(bare)
        with tempfile.TemporaryDirectory(prefix="gengate-llm-bench-") as data:
            gg_port, gg_key, gengate = start_gengate(fake_port, data)
            procs.append(gengate)
            rounds: dict[str, list[float]] = {"direct": [], "bare_relay": [], "gengate": []}
            for _ in range(args.rounds):
                rounds["direct"].append(_rps(fake_port, "sk-fake", args.seconds))
                rounds["bare_relay"].append(_rps(bare_port, "sk-fake", args.seconds))
                rounds["gengate"].append(_rps(gg_port, gg_key, args.seconds))
            ttfb1 = asyncio.run(_ttfb_pairs((fake_port, "sk-fake"), (gg_port, gg_key), 1, 300))
            ttfb16 = asyncio.run(_ttfb_pairs((fake_port, "sk-fake"), (gg_port, gg_key), 16,
                                             40))
        other = ({"skipped": "--no-litellm"} if args.no_litellm
                 else litellm(fake_port, args.seconds, args.install_timeout))
    finally:
        for proc in reversed(procs):
            stop(proc)
    rps = {name: statistics.median(values) for name, values in rounds.items()}
    result: dict[str, object] = {
        "rps_rounds": rounds, "rps_median": rps,
        "rps_vs_direct": rps["gengate"] / rps["direct"],
        "rps_vs_bare_relay": rps["gengate"] / rps["bare_relay"],
        "rps_vs_bare_relay_per_round": [g / b for g, b in zip(rounds["gengate"],
                                                                rounds["bare_relay"],
                                                                strict=True)],
        "bare_relay_vs_direct": rps["bare_relay"] / rps["direct"],
        "ttfb_1_stream": ttfb1, "ttfb_16_streams": ttfb16,
        "added_ttfb1_ms": ttfb1["added_ms"], "added_ttfb16_ms": ttfb16["added_ms"],
        "litellm": other,
    }
    if "rps" in other:
        result["rps_vs_litellm"] = rps["gengate"] / float(other["rps"])  # type: ignore[arg-type]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "llm.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def start_bare_relay(fake_port: int) -> tuple[int, subprocess.Popen[bytes]]:
    """The design's relay anchor: a bare ASGI app with one pooled client (throughput only:
    it does not stream)."""
    port = free_port()
    proc = start([sys.executable, "-m", "uvicorn", "bench.bare_relay:app", "--port", str(port),
                  "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                  "--log-level", "warning"], port,
                 {"PYTHONPATH": str(HERE.parent),
                  "BARE_RELAY_UPSTREAM": f"http://127.0.0.1:{fake_port}"})
    wait_up(f"http://127.0.0.1:{port}/", proc)
    return port, proc


def start_gengate(fake_port: int, data: str) -> tuple[int, str, subprocess.Popen[bytes]]:
    """gengate on SQLite, one process, and a user with a balance no run exhausts."""
    port = free_port()
    accounts = [{"name": "fake", "kind": "anthropic", "api_key": "sk-fake",
                 "base_url": f"http://127.0.0.1:{fake_port}"}]
    env = {"GENGATE_DATA_DIR": data, "GENGATE_ADMIN_KEY": ADMIN, "GENGATE_PORT": str(port),
           "GENGATE_LLM_ACCOUNTS": json.dumps(accounts),
           "GENGATE_RATE_PER_SECOND": "1000000", "GENGATE_RATE_PER_MINUTE": "100000000",
           "GENGATE_IP_RATE_PER_SECOND": "1000000"}
    proc = start([sys.executable, "-m", "gengate", "serve", "--no-worker"], port, env)
    wait_up(f"http://127.0.0.1:{port}/healthz", proc)
    user = call(f"http://127.0.0.1:{port}/admin/users",
                {"email": "llm@example.com", "balance": 10**9, "max_queue": 10},
                {"Authorization": f"Bearer {ADMIN}"})["data"]
    return port, str(user["apiKey"]), proc


if __name__ == "__main__":
    main()
