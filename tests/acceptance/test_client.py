"""`gengate.client` against a running gengate on a real socket: jobs with progress, the
contract's error types, retries that are safe (a 503 from a hop in front of the server,
the same Idempotency-Key: one job), webhook verification of a real delivery, and every
example of docs/client.md run as written."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gengate.client import AsyncClient, Client, Job, Unreachable, WaitTimeout, verify_webhook
from gengate.config import Settings
from gengate.errors import (
    BadRequest,
    GengateError,
    InsufficientBalance,
    NotFound,
    QueueFull,
    Unauthorized,
)
from gengate.testing import WebhookReceiver, free_port, serve_gateway
from gengate.testing.flaky import FlakyHop

DOCS = Path(__file__).parents[2] / "docs" / "client.md"


@pytest.fixture
def slow(settings: Settings) -> Settings:
    return settings.model_copy(update={"local_delay": 0.4, "local_steps": 4,
                                       "local_hang_marker": "please-hang",
                                       "webhook_allow": "127.0.0.1"})


async def test_a_job_with_its_progress(slow: Settings) -> None:
    async with serve_gateway(slow) as gw:
        _, key = await gw.create_user(balance=100)
        seen: list[Job] = []
        async with AsyncClient(gw.base_url, key) as gg:
            job = await gg.run("midjourney", "imagine", prompt="a red fox", interval=0.05,
                               on_progress=seen.append)
            assert job.succeeded and job.product == "midjourney"
            progress = [j.progress or 0 for j in seen]
            assert progress == sorted(progress) and progress[-1] == 100
            assert len(seen) == len({str(j.body) for j in seen})  # one call per change
            files = job.files()
            assert files and all(job.id in f for f in files)
            assert (await gg.fetch(job.id)).body == job.body  # product found by itself
            listed = await gg.list_jobs()
            assert [item["jobId"] for item in listed] == [job.id]
            info = await gg.info()
            assert info["balance"] < 100


async def test_the_synchronous_client(slow: Settings) -> None:
    async with serve_gateway(slow) as gw:
        _, key = await gw.create_user(balance=100)

        def use() -> tuple[Job, Job]:
            with Client(gw.base_url, key) as gg:
                job = gg.wait(gg.imagine("an owl"), interval=0.05)
                seed = gg.wait(gg.seed(job.id), interval=0.05)
                return job, seed

        job, seed = await asyncio.to_thread(use)
        assert job.succeeded and seed.succeeded
        assert seed.data["seed"]  # the seed of the first job, a job of its own


async def test_errors_are_the_contracts_own(slow: Settings) -> None:
    async with serve_gateway(slow) as gw:
        _, poor = await gw.create_user(balance=0)
        _, one = await gw.create_user(balance=100, max_queue=1)
        async with AsyncClient(gw.base_url, "gg-wrong") as gg:
            with pytest.raises(Unauthorized) as bad_key:
                await gg.imagine("a fox")
            assert bad_key.value.status_code == 401
        async with AsyncClient(gw.base_url, poor) as gg:
            with pytest.raises(InsufficientBalance):
                await gg.imagine("a fox")
            with pytest.raises(NotFound):
                await gg.fetch("no-such-job")
            with pytest.raises(BadRequest, match="no field 'colour'"):
                await gg.submit("midjourney", "imagine", prompt="a fox", colour="red")
            with pytest.raises(NotFound, match="no action `paint`"):
                await gg.submit("midjourney", "paint", prompt="a fox")
        async with AsyncClient(gw.base_url, one) as gg:
            hanging = await gg.imagine("a fox please-hang")
            with pytest.raises(QueueFull):
                await gg.imagine("a second fox")
            with pytest.raises(WaitTimeout) as late:
                await gg.wait(hanging, timeout=0.2, interval=0.05)
            assert late.value.job.id == hanging and not late.value.job.done
            cancelled = await gg.cancel(hanging)
            assert cancelled.status == "FAILED"
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", "gg-any", retries=1) as gg:
        with pytest.raises(Unreachable, match="cannot reach gengate"):
            await gg.info()


async def test_a_submit_is_retried_with_the_same_idempotency_key(slow: Settings) -> None:
    async with serve_gateway(slow) as gw:
        _, key = await gw.create_user(balance=100)
        async with FlakyHop(gw.base_url, fail={"/midjourney/v1/imagine": 1,
                                               "/jobs/cancel": 1}) as hop:
            async with AsyncClient(hop.base_url, key) as gg:
                job_id = await gg.imagine("a heron please-hang")
                posts = [s for s in hop.seen if s.path == "/midjourney/v1/imagine"]
                assert [s.status for s in posts] == [503, 200]
                keys = {s.headers["idempotency-key"] for s in posts}
                assert len(keys) == 1
                assert [j["jobId"] for j in await gg.list_jobs()] == [job_id]
                # a cancel carries no key: it is not sent twice
                with pytest.raises(GengateError) as refused:
                    await gg.cancel(job_id)
                assert refused.value.status_code == 503
                assert [s.status for s in hop.seen if s.path == "/jobs/cancel"] == [503]
                await gg.cancel(job_id)


async def test_webhook_verification_of_a_real_delivery(slow: Settings) -> None:
    async with WebhookReceiver() as receiver, serve_gateway(slow) as gw:
        _, key = await gw.create_user(balance=100)
        async with AsyncClient(gw.base_url, key) as gg:
            job = await gg.wait(await gg.imagine("a wren", hookUrl=receiver.url),
                                interval=0.05)
            secret = (await gg.request("GET", "/webhooks/secret"))["data"]["secret"]
        request = await receiver.next()
        assert verify_webhook(secret, request.body, request.headers) == job.body
        with pytest.raises(Unauthorized):
            verify_webhook(secret, request.body.replace(b"SUCCESS", b"FAILED"),
                           request.headers)
        other = "whsec_" + "A" * 43 + "="
        with pytest.raises(Unauthorized):
            verify_webhook(other, request.body, request.headers)


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)


async def test_the_documented_examples_run(slow: Settings, tmp_path: Path) -> None:
    examples = _examples()
    assert len(examples) == 4
    async with WebhookReceiver() as receiver, serve_gateway(slow) as gw:
        _, key = await gw.create_user(balance=100)
        env = {**os.environ, "GENGATE_BASE_URL": gw.base_url, "GENGATE_API_KEY": key}
        for i, code in enumerate(examples[:3]):
            script = tmp_path / f"example{i}.py"
            script.write_text(code)
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, str(script)], env=env, capture_output=True,
                text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip(), code
        async with AsyncClient(gw.base_url, key) as gg:
            await gg.wait(await gg.imagine("a wren", hookUrl=receiver.url), interval=0.05)
            secret = (await gg.request("GET", "/webhooks/secret"))["data"]["secret"]
        request = await receiver.next()
        namespace: dict[str, object] = {}
        exec(compile(examples[3], str(DOCS), "exec"), namespace)
        receive = namespace["receive"]
        assert callable(receive)
        assert receive(secret, request.body, request.headers) == 204
        assert receive(secret, request.body + b" ", request.headers) == 401
