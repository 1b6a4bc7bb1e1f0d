"""Bad input to every Flux and GPT image path: the product's envelope with a 4xx that names
what is wrong, nothing charged, nothing stored."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from gengate.config import Settings
from gengate.testing import Gateway, serve_gateway


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "green").save(buffer, "PNG")
    return buffer.getvalue()


LONG = "x" * 4001
BIG_IMAGE = png((4097, 4097))  # over 4096 x 4096 pixels, though small in bytes


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[Gateway]:
    async with serve_gateway(settings, with_worker=False) as g:
        yield g


async def _nothing_charged(gw: Gateway, user_id: int) -> None:
    response = await gw.http.get(f"/admin/users/{user_id}/ledger",
                                 headers={"Authorization": f"Bearer {gw.admin_key}"})
    data = response.json()["data"]
    assert data["totals"]["freeze"] == 0
    assert data["user"]["balance"] == 100 and data["user"]["freeze_balance"] == 0


def _refused(response: httpx.Response, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["status"] == "FAILED" and payload["data"] is None
    assert needle in payload["message"], payload


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("/flux/generate", {}, 400, "prompt: is required"),
    ("/flux/generate", {"prompt": "a cat"}, 400, "mode: is required"),
    ("/flux/generate", {"prompt": "", "mode": "flux1-dev"}, 400, "prompt"),
    ("/flux/generate", {"prompt": LONG, "mode": "flux1-dev"}, 400, "prompt"),
    ("/flux/generate", {"prompt": "a cat", "mode": "flux9"}, 400, "mode"),
    ("/flux/generate", {"prompt": "a cat", "model": "flux9"}, 400, "mode"),
    ("/flux/generate", {"prompt": "a cat", "mode": "flux1-dev", "size": "999x999"}, 400,
     "size"),
    ("/flux/generate", {"prompt": "a cat", "mode": "flux1-dev", "aspect_ratio": "5:1"}, 400,
     "aspect_ratio"),
    ("/flux/generate", {"prompt": "a cat", "mode": "flux1-dev", "hookUrl": "h" * 2084}, 400,
     "hookUrl"),
    ("/flux/generate", {"prompt": "a cat", "mode": "flux1-dev", "hookUrl": "ftp://x"}, 400,
     "hookUrl"),
    ("/flux/generate", {"prompt": "a cat", "mode": "flux1-dev", "timeout": 99}, 400, "timeout"),
    ("/flux/generate", {"prompt": 7, "mode": "flux1-dev"}, 400, "prompt"),
    ("/bfl/v1/flux-kontext-pro", {}, 400, "prompt: is required"),
    ("/bfl/v1/flux-kontext-max", {"prompt": "a", "aspect_ratio": "22:9"}, 400, "aspect_ratio"),
    ("/bfl/v1/flux-kontext-max", {"prompt": "a", "aspect_ratio": "wide"}, 400, "aspect_ratio"),
    ("/bfl/v1/flux-kontext-pro", {"prompt": "a", "safety_tolerance": 7}, 400,
     "safety_tolerance"),
    ("/bfl/v1/flux-kontext-pro", {"prompt": "a", "output_format": "gif"}, 400, "output_format"),
    ("/bfl/v1/flux-kontext-pro", {"prompt": "a", "seed": -1}, 400, "seed"),
    ("/bfl/v1/flux-kontext-pro", {"prompt": "a", "webhook_url": ""}, 400, "webhook_url"),
    ("/bfl/v1/flux-kontext-pro", {"prompt": "a", "input_image": "not base64!"}, 400,
     "input_image"),
    ("/bfl/v1/flux-kontext-pro", {"prompt": "a", "input_image": "aGVsbG8="}, 400,
     "input_image"),
    ("/bfl/v1/flux-kontext-pro",
     {"prompt": "a", "input_image": base64.b64encode(BIG_IMAGE).decode()}, 400, "too large"),
    ("/bfl/v1/flux-kontext-pro", {"prompt": "a", "input_image": "http://10.0.0.1/a.png"},
     400, "input_image"),
    ("/openai/gpt/generations", {}, 400, "prompt: is required"),
    ("/openai/gpt/generations", {"prompt": "a", "model": "dall-e-9"}, 400, "model"),
    ("/openai/gpt/generations", {"prompt": "a", "model": "gpt-image-1", "aspect_ratio": "1:1"},
     400, "aspect_ratio: only gpt-image-2 takes it"),
    ("/openai/gpt/generations", {"prompt": "a", "aspect_ratio": "2:1"}, 400, "aspect_ratio"),
    ("/openai/gpt/generations", {"prompt": "a", "size": "1024x1024"}, 400,
     "size: only gpt-image-2-plus takes it"),
    ("/openai/gpt/generations", {"prompt": "a", "model": "gpt-image-2-plus", "size": "big"},
     400, "size: must be WIDTHxHEIGHT"),
    ("/openai/gpt/generations", {"prompt": "a", "referImages": "http://x.example/a.png"}, 400,
     "referImages"),
    ("/openai/gpt/generations", {"prompt": "a", "referImages": ["file:///etc/passwd"]}, 400,
     "referImages[0]"),
    ("/openai/gpt/generations", {"prompt": "a", "referImages": ["http://127.0.0.1/a.png"]},
     400, "referImages[0]"),
    ("/openai/gpt/generations", {"prompt": "a", "referImages": ["https://x.example/a"] * 17},
     400, "referImages"),
    ("/openai/gpt/generations", {"prompt": "p" * 32001}, 400, "prompt"),
    ("/openai/4o-image/generations", {"referImages": []}, 400, "prompt: is required"),
    ("/openai/4o-image/generations", {"prompt": "a", "hookUrl": "not a url"}, 400, "hookUrl"),
])
async def test_json_paths_refuse(gw: Gateway, path: str, body: dict[str, Any], status: int,
                                 needle: str) -> None:
    user_id, key = await gw.create_user(balance=100)
    _refused(await gw.client(key).post(path, json=body), status, needle)
    await _nothing_charged(gw, user_id)


@pytest.mark.parametrize(("fields", "files", "status", "needle"), [
    ({"prompt": "a"}, [], 400, "image: at least one image file is required"),
    ({}, [("image", ("a.png", png(), "image/png"))], 400, "prompt: is required"),
    ({"prompt": "a", "mode": "flux1-dev"}, [("image", ("a.png", png(), "image/png"))], 400,
     "mode: flux1-dev cannot edit images"),
    ({"prompt": "a"}, [("image", (f"{i}.png", png(), "image/png")) for i in range(5)], 400,
     "at most 4 images"),
    ({"prompt": "a"}, [("image", ("a.png", b"not an image", "image/png"))], 400,
     "image is not a valid image"),
    ({"prompt": "a"}, [("image", ("a.png", BIG_IMAGE, "image/png"))], 400, "too large"),
    ({"prompt": "a"}, [("image", ("a.png", b"\x00" * (10 * 1024 * 1024 + 1), "image/png"))],
     413, "image: file too large"),
    ({"prompt": "a", "size": "5x5"}, [("image", ("a.png", png(), "image/png"))], 400, "size"),
])
async def test_flux_edits_refuses(gw: Gateway, fields: dict[str, str],
                                  files: list[Any], status: int, needle: str) -> None:
    user_id, key = await gw.create_user(balance=100)
    response = await gw.client(key).post("/flux/edits", data=fields, files=files or None)
    if not files:  # httpx sends an url-encoded form without files
        assert response.status_code == 415
        response = await gw.client(key).post(
            "/flux/edits", data=fields, files={"other": (None, "x")})
    _refused(response, status, needle)
    await _nothing_charged(gw, user_id)


@pytest.mark.parametrize("path", ["/flux/fetch", "/openai/gpt/fetch", "/openai/4o-image/fetch"])
async def test_fetch_paths_refuse(gw: Gateway, path: str) -> None:
    user_id, key = await gw.create_user(balance=100)
    client = gw.client(key)
    _refused(await client.get(path), 400, "jobId")
    _refused(await client.get(path, params={"jobId": "no-such-job"}), 404, "")
    _refused(await client.get(path, params={"jobId": "j" * 65}), 400, "jobId")
    _refused(await client.post(path, files={"other": (None, "x")}), 400, "jobId")
    other = await submitted_flux(client) if path != "/flux/fetch" else None
    if other is not None:  # another product's job is not found here
        _refused(await client.get(path, params={"jobId": other}), 404, "")
    anonymous = await gw.http.get(path, params={"jobId": "x"})
    assert anonymous.status_code == 401


async def submitted_flux(client: httpx.AsyncClient) -> str:
    response = await client.post("/flux/generate", json={"prompt": "a", "mode": "flux1-dev"})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["jobId"])


async def test_json_paths_refuse_what_is_not_json(gw: Gateway) -> None:
    user_id, key = await gw.create_user(balance=100)
    client = gw.client(key)
    for path in ("/flux/generate", "/bfl/v1/flux-kontext-pro", "/openai/gpt/generations",
                 "/openai/4o-image/generations"):
        _refused(await client.post(path, content=b'{"prompt": ',
                                   headers={"content-type": "application/json"}), 400, "JSON")
        _refused(await client.post(path, json=["a cat"]), 400, "object")
        _refused(await client.post(path, content=b"prompt=a",
                                   headers={"content-type": "text/plain"}), 415, "Content-Type")
    await _nothing_charged(gw, user_id)
