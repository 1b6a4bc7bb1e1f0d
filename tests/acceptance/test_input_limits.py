"""No request may stall or bloat the server: bounded bodies, prompts and images, and
nothing is decoded for a caller who could not be admitted anyway."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from gengate.config import Settings
from gengate.limits import MAX_IMAGE_BYTES, MAX_PROMPT_CHARS
from gengate.testing import Gateway, serve_gateway

from .test_lifecycle import png_b64

V1 = "/midjourney/v1"
# the adversarial prompt of the report: single letters, the worst case of the word filter
LETTERS = "a b " * (MAX_PROMPT_CHARS // 4)
NOT_BASE64 = "data:image/png;base64,%%%"


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[Gateway]:
    async with serve_gateway(settings) as g:
        yield g


def _envelope(response: httpx.Response, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "FAILED" and body["data"] is None
    assert needle in body["message"], body


async def _nothing_stored(client: httpx.AsyncClient, balance: float) -> None:
    info = (await client.get(f"{V1}/info")).json()["data"]
    assert info["balance"] == balance and info["freeze_balance"] == 0
    listed = (await client.get(f"{V1}/fetch-list", params={"status": "all"})).json()["data"]
    assert listed == []


async def test_prompt_check_takes_the_longest_prompt_and_refuses_longer(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=0)
    client = gw.client(key)
    assert len(LETTERS) == MAX_PROMPT_CHARS
    accepted = await client.post(f"{V1}/promptCheck", json={"prompt": LETTERS})
    assert accepted.status_code == 200, accepted.text
    _envelope(await client.post(f"{V1}/promptCheck", json={"prompt": LETTERS + "a"}), 400,
              "prompt: String should have at most 6000 characters")
    # the 1 MB prompt that held the server for 53 s is refused from its size alone
    _envelope(await client.post(f"{V1}/promptCheck", json={"prompt": "a b " * 262_144}), 413,
              "Request body too large: limit is 131072 bytes")


async def test_oversized_prompts_are_neither_charged_nor_stored(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    _envelope(await client.post(f"{V1}/imagine", json={"prompt": "x" * 8_000_000}), 413,
              "Request body too large")
    _envelope(await client.post(f"{V1}/imagine", json={"prompt": "cat " * 1501}), 400,
              "at most 6000 characters")
    await _nothing_stored(client, 10)
    # the longest prompt is stored whole, and a fetch (or a page of 100) stays small
    longest = ("a cat " * MAX_PROMPT_CHARS)[: MAX_PROMPT_CHARS - 1].strip()
    submitted = await client.post(f"{V1}/imagine", json={"prompt": longest})
    assert submitted.status_code == 200, submitted.text
    job = await gw.wait(client, submitted.json()["data"]["jobId"])
    assert job["data"]["prompt"].startswith(longest[:100])
    fetched = await client.get(f"{V1}/fetch", params={"jobId": job["data"]["jobId"]})
    assert len(fetched.content) < 2 * MAX_PROMPT_CHARS + 4096
    listed = await client.get(f"{V1}/fetch-list", params={"limit": 100, "status": "all"})
    assert len(listed.content) < 100 * (MAX_PROMPT_CHARS + 4096)


async def test_fetch_refuses_a_job_id_longer_than_any_id(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=0)
    client = gw.client(key)
    for name in ("jobId", "job_id"):  # the message names the field as it was sent
        _envelope(await client.get(f"{V1}/fetch", params={name: "j" * 65}), 400,
                  f"{name}: String should have at most 64 characters")
    _envelope(await client.post(f"{V1}/fetch", json={"jobId": "j" * 65}), 400,
              "jobId: String should have at most 64 characters")
    _envelope(await client.get(f"{V1}/fetch", params={"jobId": "j" * 64}), 404, "not found")


async def test_json_routes_read_a_small_body_and_image_routes_a_larger_one(
        gw: Gateway) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    padding = "p" * 200_000  # unknown fields are ignored, but the body still has to be read
    for path in ("imagine", "fetch-list", "promptCheck", "action"):
        _envelope(await client.post(f"{V1}/{path}", json={"prompt": "cat", "x": padding}),
                  413, "limit is 131072 bytes")
    # an image route reads it, and answers about the images
    _envelope(await client.post(f"{V1}/blend", json={"imgBase64Array": [], "x": padding}),
              400, "2 to 5")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused as the chunks arrive
        for _ in range(64):
            yield b"x" * 65536
    _envelope(await client.post(f"{V1}/imagine", content=chunks(),
                                headers={"content-type": "application/json"}),
              413, "Request body too large")
    await _nothing_stored(client, 10)


async def test_admin_bodies_are_bounded(gw: Gateway) -> None:
    response = await gw.http.post(
        "/admin/users", json={"email": "big@example.com", "x": "p" * 200_000},
        headers={"Authorization": f"Bearer {gw.admin_key}"})
    _envelope(response, 413, "limit is 131072 bytes")


async def test_no_balance_or_no_queue_is_told_before_any_image_is_decoded(
        gw: Gateway) -> None:
    # The images are not even base64: had they been decoded first, the answer would be 400.
    _, broke_key = await gw.create_user(balance=0)
    broke = gw.client(broke_key)
    _envelope(await broke.post(f"{V1}/blend", json={"imgBase64Array": [NOT_BASE64] * 2}),
              402, "Insufficient balance")
    _envelope(await broke.post(f"{V1}/describe", json={"base64": NOT_BASE64}),
              402, "Insufficient balance")
    _, full_key = await gw.create_user(balance=10, max_queue=0)
    full = gw.client(full_key)
    _envelope(await full.post(f"{V1}/blend", json={"imgBase64Array": [NOT_BASE64] * 2}),
              499, "max_queue")
    # with room and money, the images are looked at
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    _envelope(await client.post(f"{V1}/blend", json={"imgBase64Array": [NOT_BASE64] * 2}),
              400, "imgBase64Array[0] is not valid base64")
    blended = await client.post(f"{V1}/blend", json={
        "imgBase64Array": [png_b64((200, 10, 10)), png_b64((10, 10, 200))]})
    assert blended.status_code == 200, blended.text


def _png_b64(size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def test_images_are_bounded_in_pixels_and_bytes(gw: Gateway) -> None:
    _, key = await gw.create_user(balance=10)
    client = gw.client(key)
    # 4097 x 4097 of one grey: a small file, past the pixel limit (read from its header)
    huge = _png_b64((4097, 4097))
    assert len(huge) < 200_000
    _envelope(await client.post(f"{V1}/blend", json={"imgBase64Array": [huge, huge]}),
              400, "imgBase64Array[0] is too large")
    too_many_bytes = "data:image/png;base64," + "A" * (MAX_IMAGE_BYTES // 3 * 4 + 8192)
    _envelope(await client.post(f"{V1}/describe", json={"base64": too_many_bytes}),
              400, "base64 is too large: at most 10485760 bytes")
    await _nothing_stored(client, 10)
