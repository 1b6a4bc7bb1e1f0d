"""``make bench``: how fast results are copied into each storage backend, in one run.

Writes the same set of result-sized files (incompressible bytes, like PNGs) through
gengate's own storage classes: to local disk (the anchor) and to an S3-compatible store,
by default moto's S3 server started here as a process on 127.0.0.1 (pass ``--s3-url``
with ``--access-key``/``--secret-key`` to measure a MinIO or a real bucket instead).
Small files go up as one PUT, large ones as multipart uploads. Figures are MB/s (10^6
bytes) and the object store's ratio to local disk. Results go to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from gengate.objectstore import ObjectStorage, ObjectStoreConfig
from gengate.storage import LocalStorage, Storage

HERE = Path(__file__).parent
KEY, SECRET = "bench", "bench-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return proc, endpoint
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("moto's S3 server did not come up")


def make_bucket(endpoint: str, access_key: str, secret_key: str) -> str:
    import boto3

    name = f"bench-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                 aws_secret_access_key=secret_key,
                 region_name="us-east-1").create_bucket(Bucket=name)
    return name


async def copy_all(storage: Storage, files: list[bytes], concurrency: int) -> float:
    """Seconds to store every file, ``concurrency`` at a time (like a worker's jobs)."""
    gate = asyncio.Semaphore(concurrency)
    run = uuid.uuid4().hex[:8]

    async def one(i: int, data: bytes) -> None:
        async with gate:
            await storage.put(f"bench/{run}/{i}.png", data, "image/png")

    started = time.perf_counter()
    await asyncio.gather(*(one(i, data) for i, data in enumerate(files)))
    return time.perf_counter() - started


async def measure(stores: dict[str, Storage], sets: dict[str, list[bytes]],
                  concurrency: int, rounds: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for set_name, files in sets.items():
        total = sum(len(f) for f in files)
        for name, storage in stores.items():
            await copy_all(storage, files[:2], concurrency)  # warm up connections
            best = min([await copy_all(storage, files, concurrency) for _ in range(rounds)])
            figures.setdefault(set_name, {})[name] = total / best / 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=64, help="1 MiB files per round")
    parser.add_argument("--large", type=int, default=4, help="24 MiB files per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--s3-url", help="http(s)://endpoint (a bucket is created there)")
    parser.add_argument("--access-key", default=os.environ.get("GENGATE_STORAGE_ACCESS_KEY"))
    parser.add_argument("--secret-key", default=os.environ.get("GENGATE_STORAGE_SECRET_KEY"))
    args = parser.parse_args()

    moto = None
    if args.s3_url:
        endpoint, access_key, secret_key = args.s3_url.rstrip("/"), args.access_key, \
            args.secret_key
        server = endpoint
    else:
        moto, endpoint = start_moto()
        access_key, secret_key, server = KEY, SECRET, "moto (Python, one process)"
    try:
        bucket = make_bucket(endpoint, access_key, secret_key)
        sets = {f"1 MiB x {args.small}": [os.urandom(1 << 20) for _ in range(args.small)],
                f"24 MiB x {args.large}": [os.urandom(24 << 20) for _ in range(args.large)]}
        with tempfile.TemporaryDirectory(prefix="gengate-bench-") as tmp:
            stores: dict[str, Storage] = {
                "local disk": LocalStorage(Path(tmp), "http://bench"),
                "object store": ObjectStorage(ObjectStoreConfig(
                    f"{endpoint}/{bucket}", access_key, secret_key), "http://bench"),
            }
            figures = asyncio.run(measure(stores, sets, args.concurrency, args.rounds))
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait()

    print(f"result copy throughput, MB/s ({args.concurrency} at a time, best of "
          f"{args.rounds}); object store: {server}")
    print(f"{'files':<14} {'local disk':>12} {'object store':>14} {'ratio':>8}")
    for set_name, row in figures.items():
        ratio = row["object store"] / row["local disk"]
        print(f"{set_name:<14} {row['local disk']:>12.1f} {row['object store']:>14.1f} "
              f"{ratio:>8.2f}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "storage.json").write_text(json.dumps(
        {"server": server, "concurrency": args.concurrency, "mb_per_s": figures}, indent=2))


if __name__ == "__main__":
    main()
