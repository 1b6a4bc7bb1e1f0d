"""A fake of Google's Gemini API (image output): a real HTTP server on 127.0.0.1 for tests
and benches.

``async with FakeGemini() as up:`` serves, as Google's public documentation describes them
(ai.google.dev/api/generate-content, ai.google.dev/gemini-api/docs/image-generation,
ai.google.dev/gemini-api/docs/troubleshooting):

* ``POST /v1beta/models/{model}:generateContent`` with the key in ``x-goog-api-key`` (or
  ``?key=``): ``contents[].parts[]`` of ``text`` and ``inline_data``/``inlineData``
  (``mime_type``/``mimeType``, base64 ``data``) as reference images;
  ``generationConfig.responseModalities`` (must include ``IMAGE`` for a picture),
  ``generationConfig.imageConfig.aspectRatio`` (``1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4,
  9:16, 16:9, 21:9``, and ``1:4, 4:1, 1:8, 8:1`` on gemini-3.1-flash-image-preview) and
  ``imageSize`` (``1K|2K|4K``, uppercase K, Gemini 3 image models only), ``tools``;
* answers ``{"candidates": [{"content": {"role": "model", "parts": [{"text"},
  {"inlineData": {"mimeType", "data"}}]}, "finishReason": "STOP", "index": 0}],
  "usageMetadata", "modelVersion", "responseId"}``; a prompt the safety system blocks gets
  no candidates and ``promptFeedback.blockReason`` ``PROHIBITED_CONTENT``; a picture it
  withholds gets ``finishReason`` ``IMAGE_SAFETY`` and no image;
* ``GET /v1beta/models`` (the model list);
* errors ``{"error": {"code", "message", "status"}}``: 400 ``INVALID_ARGUMENT`` (a wrong
  key: "API key not valid. Please pass a valid API key." with reason ``API_KEY_INVALID``),
  403 ``PERMISSION_DENIED`` (no key), 404 ``NOT_FOUND`` (unknown model), 429
  ``RESOURCE_EXHAUSTED``, 500 ``INTERNAL``, 503 ``UNAVAILABLE``.

Pixel sizes: about 1024 x 1024 pixels at the ratio for ``1K`` (16:9 -> 1344 x 768), twice
and four times the sides for ``2K`` and ``4K`` [the guide's tables; computed here as that
area, sides multiples of 64], drawn by :func:`gengate.imaging.picture.render_picture` at
``scale`` times that size.

Switches: ``plan`` (consumed one entry per generate request: an HTTP status, ``"close"``
to drop the connection, ``"hang"`` never to answer), ``gate`` (an :class:`asyncio.Event`
each generate request waits for: a test decides when the upstream answers). Observations:
``requests`` (model, prompt, config, no image data), ``arrived`` (set by the first generate
request).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from PIL import Image

from gengate.errors import BadRequest
from gengate.imaging.codec import decode_image
from gengate.imaging.picture import encode, fit_area, parse_ratio, render_picture
from gengate.testing.http import LocalServer, read_request

__all__ = ["FakeGemini", "GeminiRequest"]

CLOSE, HANG = "close", "hang"
IMAGE_MODELS = ("gemini-2.5-flash-image", "gemini-3-pro-image-preview",
                "gemini-3.1-flash-image-preview")
_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_EXTREME = ("1:4", "4:1", "1:8", "8:1")
_SIDES = {"1K": 1024, "2K": 2048, "4K": 4096}
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(slots=True)
class GeminiRequest:
    """One generate request as the fake saw it."""

    model: str
    prompt: str
    images: int
    generation_config: dict[str, Any] = field(default_factory=dict)
    tools: list[Any] = field(default_factory=list)
    key: str | None = None


class _Refused(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None):
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message,
                                 "status": _STATUS.get(self.code, "UNKNOWN")}
        if self.reason:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                 "reason": self.reason, "domain": "googleapis.com"}]
        return {"error": error}


class FakeGemini(LocalServer):
    """The HTTP/1.1 server (keep-alive)."""

    def __init__(self, *, keys: tuple[str, ...] = ("AIza-test",), scale: float = 0.25,
                 banned_words: tuple[str, ...] = ("forbiddenword",),
                 unsafe_words: tuple[str, ...] = ("unsafeword",)):
        self.keys = set(keys)
        self.scale = scale
        self.banned_words = {w.lower() for w in banned_words}
        self.unsafe_words = {w.lower() for w in unsafe_words}
        self.plan: list[int | str] = []
        self.gate: asyncio.Event | None = None
        #: set when a generate request arrives (before it waits on :attr:`gate`)
        self.arrived = asyncio.Event()
        self.requests: list[GeminiRequest] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                method, target, headers, body = await read_request(reader)
                path, _, query = target.partition("?")
                generate = method == "POST" and path.endswith(":generateContent")
                action = self.plan.pop(0) if generate and self.plan else 200
                if action == CLOSE:
                    return
                if action == HANG:
                    await asyncio.Event().wait()
                if generate:
                    self.arrived.set()
                if generate and self.gate is not None:
                    await self.gate.wait()
                if action != 200:
                    status = int(action)
                    answer = _Refused(status, "The service is currently unavailable."
                                      if status >= 500 else "Resource has been exhausted "
                                      "(e.g. check quota).").body()
                else:
                    status, answer = await asyncio.to_thread(
                        self._answer, method, path, query, headers, body)
                payload = orjson.dumps(answer)
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'X')}",
                        "content-type: application/json; charset=UTF-8",
                        f"content-length: {len(payload)}"]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            keys = parse_qs(query).get("key") or []
            key = headers.get("x-goog-api-key") or (keys[0] if keys else None)
            self._authorize(key)
            if method == "GET" and path == "/v1beta/models":
                return 200, {"models": [
                    {"name": f"models/{m}", "displayName": m,
                     "supportedGenerationMethods": ["generateContent", "countTokens"]}
                    for m in IMAGE_MODELS]}
            prefix = "/v1beta/models/"
            if method == "POST" and path.startswith(prefix) and path.endswith(
                    ":generateContent"):
                model = path[len(prefix):-len(":generateContent")]
                return 200, self._generate(model, body, key)
            raise _Refused(404, f"Method not found: {method} {path}")
        except _Refused as refused:
            return refused.code, refused.body()

    def _authorize(self, key: str | None) -> None:
        if not key:
            raise _Refused(403, "Method doesn't allow unregistered callers (callers without "
                           "established identity). Please use API Key or other form of API "
                           "consumer identity to call this API.")
        if key not in self.keys:
            raise _Refused(400, "API key not valid. Please pass a valid API key.",
                           "API_KEY_INVALID")

    def _generate(self, model: str, body: bytes, key: str | None) -> dict[str, Any]:
        if model not in IMAGE_MODELS:
            raise _Refused(404, f"models/{model} is not found for API version v1beta, or is "
                           "not supported for generateContent.")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _Refused(400, "Invalid JSON payload received.") from None
        if not isinstance(data, dict) or not isinstance(data.get("contents"), list):
            raise _Refused(400, "* GenerateContentRequest.contents: contents is not specified")
        texts: list[str] = []
        images: list[Image.Image] = []
        for content in data["contents"]:
            for part in (content or {}).get("parts") or []:
                inline = part.get("inline_data") or part.get("inlineData")
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif isinstance(inline, dict):
                    images.append(self._image(inline, len(images)))
        prompt = " ".join(texts)
        config = data.get("generationConfig") or {}
        self.requests.append(GeminiRequest(model, prompt, len(images), config,
                                           data.get("tools") or [], key))
        modalities = [str(m).upper() for m in config.get("responseModalities") or ["TEXT"]]
        image_config = config.get("imageConfig") or {}
        ratio = str(image_config.get("aspectRatio") or "1:1")
        allowed = _RATIOS + (_EXTREME if model == "gemini-3.1-flash-image-preview" else ())
        if ratio not in allowed:
            raise _Refused(400, f"* GenerateContentRequest.generation_config.image_config."
                           f"aspect_ratio: unsupported aspect ratio {ratio}")
        size = str(image_config.get("imageSize") or "1K")
        if size not in _SIDES or (size != "1K" and model == "gemini-2.5-flash-image"):
            raise _Refused(400, f"* GenerateContentRequest.generation_config.image_config."
                           f"image_size: unsupported image size {size} for {model}")
        words = set(prompt.lower().replace(",", " ").split())
        usage = {"promptTokenCount": len(prompt.split()) + 258 * len(images),
                 "candidatesTokenCount": 1290, "totalTokenCount": 1290 + len(prompt.split())}
        meta = {"usageMetadata": usage, "modelVersion": model,
                "responseId": uuid.uuid4().hex[:22]}
        if words & self.banned_words:
            return {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, **meta}
        if "IMAGE" not in modalities or words & self.unsafe_words:
            reason = "IMAGE_SAFETY" if words & self.unsafe_words else "STOP"
            return {"candidates": [{"content": {"role": "model", "parts": [
                {"text": "I can't make that picture."}]}, "finishReason": reason,
                "index": 0}], **meta}
        parsed = parse_ratio(ratio)
        assert parsed is not None
        side = _SIDES[size]
        width, height = fit_area(parsed, side * side, 64)
        scaled = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))
        picture = render_picture(prompt, zlib.crc32(prompt.encode()), scaled, images)
        encoded = base64.b64encode(encode(picture, "png")).decode("ascii")
        return {"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Here is the picture."},
            {"inlineData": {"mimeType": "image/png", "data": encoded}}]},
            "finishReason": "STOP", "index": 0}], "createTime": int(time.time()), **meta}

    @staticmethod
    def _image(inline: dict[str, Any], index: int) -> Image.Image:
        try:
            raw = base64.b64decode(str(inline.get("data") or ""), validate=True)
            return decode_image(raw, f"image {index}")
        except (ValueError, BadRequest):
            raise _Refused(400, f"Unable to process input image {index + 1}. Please retry "
                           "or report in https://developers.generativeai.google/guide/"
                           "troubleshooting") from None
