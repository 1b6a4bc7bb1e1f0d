"""Copying an upstream's result: retried, and its failure is the upstream's, not the user's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gengate.jobs import Job, JobStatus, Mode
from gengate.products.midjourney.prompt import is_illegal_prompt_failure
from gengate.providers.base import ProviderError, ProviderUpdate, TaskState
from gengate.results import ResultWriter, download
from gengate.retry import RetryPolicy
from gengate.storage import LocalStorage
from gengate.testing import free_port
from gengate.testing.http import read_request


def _job() -> Job:
    return Job(id="j1", user_id=1, product="midjourney", action="imagine", mode=Mode.FAST,
               status=JobStatus.ON_QUEUE, progress=0, prompt="a cat", quota=2000,
               timeout=300, created_at=0.0, deadline=300.0)


async def test_an_unreachable_result_fails_as_the_upstreams_fault(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/result.png"  # nothing listens there
    async with httpx.AsyncClient() as http:
        writer = ResultWriter(LocalStorage(tmp_path, "http://cdn"), http,
                              RetryPolicy(attempts=3, base=0.0))
        with pytest.raises(ProviderError) as caught:
            await writer.write(_job(), ProviderUpdate(TaskState.SUCCESS, image_url=url))
        assert caught.value.message.startswith("[Bad response]")
        assert not is_illegal_prompt_failure(caught.value.message)
        # a link the user gave is the user's own invalid link
        with pytest.raises(ProviderError) as user:
            await download(http, url, user_link=True)
        assert is_illegal_prompt_failure(user.value.message)


async def test_a_result_that_fails_once_is_fetched_again(tmp_path: Path) -> None:
    from PIL import Image

    from gengate.products.midjourney import imaging

    png = imaging.encode_png(Image.new("RGB", (32, 32), "teal"))
    answers = [b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
               b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: "
               + str(len(png)).encode() + b"\r\n\r\n" + png]
    served = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            try:
                _, path, _, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            served.append(path)
            writer.write(answers.pop(0))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient() as http:
            writer = ResultWriter(LocalStorage(tmp_path, "http://cdn"), http,
                                  RetryPolicy(attempts=3, base=0.0))
            result = await writer.write(_job(), ProviderUpdate(
                TaskState.SUCCESS, image_url=f"http://127.0.0.1:{port}/r.png"))
        assert served == ["/r.png", "/r.png"]
        assert (result["width"], result["height"]) == (32, 32)
    finally:
        server.close()
        await server.wait_closed()
