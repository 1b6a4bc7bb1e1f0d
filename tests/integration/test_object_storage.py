"""Results in an S3-compatible store (moto's S3 server over real HTTP): stored, read back,
served in every mode with Range, and an upload killed half-way leaves no object."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gengate.config import Settings
from gengate.errors import NotFound
from gengate.objectstore import PART_SIZE, ObjectStorage, ObjectStoreConfig
from gengate.testing import serve_gateway
from tests.conftest import S3_KEY, S3_SECRET, S3Bucket

V1 = "/midjourney/v1"


def _storage(bucket: S3Bucket, serve: str = "proxy", prefix: str = "") -> ObjectStorage:
    url = f"{bucket.url}/{prefix}" if prefix else bucket.url
    return ObjectStorage(ObjectStoreConfig(url, S3_KEY, S3_SECRET, serve=serve,  # type: ignore[arg-type]
                                           public_url=bucket.url), "http://gengate.test")


async def test_objects_are_stored_read_in_ranges_and_deleted(s3_bucket: S3Bucket) -> None:
    storage = _storage(s3_bucket, prefix="gengate")
    data = bytes(range(256)) * 40
    url = await storage.put("midjourney/20261202/j1.png", data, "image/png")
    assert url == "http://gengate.test/cdn/midjourney/20261202/j1.png"
    assert s3_bucket.keys() == ["gengate/midjourney/20261202/j1.png"]
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name,
                                        Key="gengate/midjourney/20261202/j1.png")
    assert head["ContentType"] == "image/png"
    assert await storage.get("midjourney/20261202/j1.png") == data
    info = await storage.stat("midjourney/20261202/j1.png")
    assert (info.size, info.content_type) == (len(data), "image/png") and info.etag
    part = b"".join([c async for c in storage.read("midjourney/20261202/j1.png", 100, 300)])
    assert part == data[100:300]
    await storage.delete("midjourney/20261202/j1.png")
    await storage.delete("midjourney/20261202/j1.png")  # gone already: no error
    assert s3_bucket.keys() == []
    with pytest.raises(NotFound):
        await storage.get("midjourney/20261202/j1.png")
    with pytest.raises(NotFound):
        await storage.stat("../escape.png")


async def test_a_large_file_goes_up_in_parts_and_appears_whole(s3_bucket: S3Bucket) -> None:
    storage = _storage(s3_bucket)
    data = os.urandom(PART_SIZE * 2 + 1000)

    async def chunks() -> Any:
        for start in range(0, len(data), 1 << 20):
            yield data[start:start + (1 << 20)]

    await storage.put_stream("big.png", chunks(), "image/png")
    assert await storage.get("big.png") == data
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads") is None


#: a process that uploads a file in parts and stops for good after the first part
_KILLED_UPLOAD = """
import asyncio, sys
from gengate.objectstore import PART_SIZE, ObjectStorage, ObjectStoreConfig

async def main():
    url, key, secret = sys.argv[1:4]
    storage = ObjectStorage(ObjectStoreConfig(url, key, secret), "http://gengate.test")

    async def chunks():
        yield b"x" * PART_SIZE
        yield b"y" * PART_SIZE
        print("two parts handed over", flush=True)
        await asyncio.Event().wait()  # the rest never comes: the process is killed here
        yield b"z"

    await storage.put_stream("midjourney/20261202/killed.png", chunks(), "image/png")

asyncio.run(main())
"""


async def test_an_upload_killed_half_way_leaves_no_object(s3_bucket: S3Bucket) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_UPLOAD, s3_bucket.url, S3_KEY, S3_SECRET,
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            assert await proc.stdout.readline() == b"two parts handed over\n"
            # the first part is on the server once the upload lists it: nothing to await
            while True:
                uploads = s3_bucket.client.list_multipart_uploads(
                    Bucket=s3_bucket.name).get("Uploads", [])
                if uploads and s3_bucket.client.list_parts(
                        Bucket=s3_bucket.name, Key=uploads[0]["Key"],
                        UploadId=uploads[0]["UploadId"]).get("Parts"):
                    break
                await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert [u["Key"] for u in uploads] == ["midjourney/20261202/killed.png"]
    assert s3_bucket.keys() == []
    with pytest.raises(NotFound):
        await _storage(s3_bucket).stat("midjourney/20261202/killed.png")


#: what every mode must answer, as (status, content-range, slice of the file)
RANGES: list[tuple[str | None, int, str | None, slice | None]] = [
    (None, 200, None, slice(None)),
    ("bytes=0-99", 206, "bytes 0-99/{size}", slice(0, 100)),
    ("bytes=100-", 206, "bytes 100-{last}/{size}", slice(100, None)),
    ("bytes=-64", 206, "bytes {tail}-{last}/{size}", slice(-64, None)),
    ("bytes=5-5", 206, "bytes 5-5/{size}", slice(5, 6)),
    ("bytes={size}-", 416, None, None),
]


@pytest.mark.parametrize("mode", ["local", "proxy", "redirect", "public"])
async def test_every_mode_serves_results_with_ranges_and_types(
        mode: str, settings: Settings, s3_bucket: S3Bucket) -> None:
    if mode != "local":
        settings = settings.model_copy(update=s3_bucket.settings(mode))
    if mode == "public":
        s3_bucket.make_public()
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user(balance=100)
        client = gw.client(key)
        submitted = await client.post(f"{V1}/imagine", json={
            "prompt": "a lighthouse --seed 7", "getUImages": True})
        body = await gw.wait(client, submitted.json()["data"]["jobId"])
        assert body["status"] == "SUCCESS", body
        data = body["data"]
        urls = [data["cdnImage"], *data["images"]]
        base = s3_bucket.url if mode == "public" else f"{gw.base_url}/cdn"
        assert all(u.startswith(base + "/midjourney/") for u in urls), urls
        stored = [u.removeprefix(base + "/") for u in urls]
        local = sorted(p.relative_to(settings.data_dir / "cdn").as_posix()
                       for p in (settings.data_dir / "cdn").rglob("*.png"))
        if mode == "local":
            assert local == sorted(stored) and s3_bucket.keys() == []
        else:
            assert local == [] and s3_bucket.keys() == sorted(stored)
        async with httpx.AsyncClient(follow_redirects=True, timeout=30) as http:
            whole = await http.get(urls[0])
            assert whole.status_code == 200 and whole.headers["content-type"] == "image/png"
            assert whole.content.startswith(b"\x89PNG")
            content = whole.content
            size = len(content)
            fill = {"size": size, "last": size - 1, "tail": size - 64}
            for header, status, content_range, part in RANGES:
                asked = {"Range": header.format(**fill)} if header else {}
                response = await http.get(urls[0], headers=asked)
                assert response.status_code == status, (header, response.text)
                if part is None:
                    continue
                assert response.headers["content-type"] == "image/png"
                assert response.headers.get("content-range") == (
                    content_range.format(**fill) if content_range else None)
                assert response.content == content[part]
                assert response.headers["accept-ranges"] == "bytes"
            if mode in ("redirect", "public"):
                first = await gw.http.get(urls[0].replace(base, "/cdn"))
                assert first.status_code == 307
                target = first.headers["location"]
                assert ("X-Amz-Signature=" in target) == (mode == "redirect")
            else:
                head = await http.head(urls[0], headers={"Range": "bytes=0-9"})
                assert head.status_code == 206 and head.headers["content-length"] == "10"
            missing = await http.get(f"{gw.base_url}/cdn/midjourney/20260101/nothing.png")
            assert missing.status_code == 404
            assert missing.json() == {"status": "FAILED", "message": "file not found",
                                      "data": None}
            escape = await http.get(f"{gw.base_url}/cdn/midjourney/..%2F..%2Fgengate.db")
            assert escape.status_code == 404


async def test_local_results_stay_readable_after_switching_to_the_object_store(
        settings: Settings, s3_bucket: S3Bucket) -> None:
    """Results written to disk before the store was configured are still served, and
    actions on them still read their parent image; new results go to the bucket."""
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user(balance=100)
        job = (await gw.client(key).post(f"{V1}/imagine", json={"prompt": "a barn"})).json()
        old = await gw.wait(gw.client(key), job["data"]["jobId"])
    path = "/cdn/" + old["data"]["cdnImage"].split("/cdn/", 1)[1]
    async with serve_gateway(settings.model_copy(update=s3_bucket.settings("proxy"))) as gw:
        served = await gw.http.get(path, headers={"Range": "bytes=1-3"})
        assert served.status_code == 206 and served.content == b"PNG"
        assert served.headers["content-type"] == "image/png"
        client = gw.client(key)
        action = await client.post(f"{V1}/action", json={
            "jobId": old["jobId"], "action": "upsample1"})
        assert action.status_code == 200, action.text
        upscaled = await gw.wait(client, action.json()["data"]["jobId"])
        assert upscaled["status"] == "SUCCESS", upscaled
        stored = upscaled["data"]["cdnImage"].split("/cdn/", 1)[1]
        assert s3_bucket.keys() == [stored]


def test_storage_settings_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GENGATE_STORAGE_PUBLIC_URL"):
        ObjectStorage(ObjectStoreConfig("http://127.0.0.1:9/b", serve="public"), "http://g")


async def test_a_store_that_is_down_fails_the_job_clearly(settings: Settings) -> None:
    from gengate.testing import free_port

    down = f"http://127.0.0.1:{free_port()}/results"  # nothing listens there
    settings = settings.model_copy(update={"storage_url": down, "storage_access_key": S3_KEY,
                                           "storage_secret_key": S3_SECRET})
    async with serve_gateway(settings) as gw:
        user_id, key = await gw.create_user(balance=100)
        client = gw.client(key)
        job = (await client.post(f"{V1}/imagine", json={"prompt": "a dam"})).json()
        body = await gw.wait(client, job["data"]["jobId"], timeout=60)
        assert body["status"] == "FAILED"
        assert body["message"] == "[Internal error] the result store is unavailable"
        totals = await gw.runtime.store.ledger_totals(user_id)
        assert totals["refund"] == totals["freeze"] and totals["settle"] == 0
        served = await gw.http.get("/cdn/midjourney/20261202/any.png")
        assert served.status_code == 502
        assert served.json() == {"status": "FAILED", "data": None,
                                 "message": "[Internal error] the result store is unavailable"}
