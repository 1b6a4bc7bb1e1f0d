"""``gengate results move``: local results copied into the object store, their URLs
switched, and a move that was interrupted goes on where it stopped."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import httpx
import pytest

from gengate.config import Settings
from gengate.errors import BadRequest
from gengate.resultmove import move_results
from gengate.resultstores import ResultStores
from gengate.store import Store
from gengate.testing import serve_gateway
from tests.conftest import S3Bucket

V1 = "/midjourney/v1"


class Interrupted(Exception):
    pass


async def test_move_copies_switches_and_resumes(settings: Settings, s3_bucket: S3Bucket) -> None:
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user(balance=100)
        client = gw.client(key)
        ids = []
        for i, split in enumerate([True, False, True, False]):
            job = (await client.post(f"{V1}/imagine", json={
                "prompt": f"a quarry {i}", "getUImages": split})).json()["data"]["jobId"]
            assert (await gw.wait(client, job))["status"] == "SUCCESS"
            ids.append(job)
    ids.sort()
    root = settings.data_dir / "cdn"
    originals = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.png")}
    assert len(originals) == 12
    lost = next(k for k in originals if ids[3] in k)  # a file lost from disk: not moved
    (root / lost).unlink()

    on_s3 = settings.model_copy(update=s3_bucket.settings("public"))
    s3_bucket.make_public()
    store = Store.open(settings.resolved_database_url())
    try:
        with pytest.raises(BadRequest):
            await move_results(store, ResultStores.from_settings(settings))
        done: list[str] = []

        def stop_after_first(job_id: str) -> None:
            done.append(job_id)
            raise Interrupted()

        with pytest.raises(Interrupted):
            await move_results(store, ResultStores.from_settings(on_s3),
                               on_job=stop_after_first)
        first = await store.get_job(done[0])
        assert first is not None and first.result["store"] == "s3"
        assert first.result["cdnImage"] == f"{s3_bucket.url}/{first.result['key']}"
        assert len(s3_bucket.keys()) == len(first.result["files"])

        env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
        env.update({"GENGATE_DATA_DIR": str(settings.data_dir), **s3_bucket.env("public")})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gengate", "results", "move", "--delete-local", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 3, err  # 3: some files were in neither store
        report = json.loads(out)
        assert report["moved"] == 2 and report["already"] == 1 and report["missing"] == [lost]
        jobs = await store.get_jobs(ids)
        assert [jobs[i].result.get("store") for i in ids] == ["s3", "s3", "s3", "local"]
    finally:
        await store.close()
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    # the interrupted run kept its local copies; the resumed run deleted the ones it moved
    assert left == sorted([*first.result["files"],
                           *(k for k in originals if ids[3] in k and k != lost)])
    assert s3_bucket.keys() == sorted(k for k in originals if ids[3] not in k)

    async with serve_gateway(on_s3) as gw, httpx.AsyncClient(timeout=30) as anyone:
        client = gw.client(key)
        for job_id in ids[:3]:
            body: dict[str, Any] = (await client.get(f"{V1}/fetch",
                                                     params={"jobId": job_id})).json()
            urls = [body["data"]["cdnImage"], *(body["data"]["images"] or [])]
            for url in urls:
                assert url.startswith(s3_bucket.url + "/")
                response = await anyone.get(url)
                assert response.status_code == 200
                assert response.content == originals[url.removeprefix(s3_bucket.url + "/")]
            assert body["data"]["discordImage"] == body["data"]["cdnImage"]
