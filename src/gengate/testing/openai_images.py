"""A fake OpenAI Images API: a real HTTP server on 127.0.0.1 for tests and benches.

``async with FakeOpenAIImages() as up:`` serves, as OpenAI's public API reference
(platform.openai.com/docs/api-reference/images) describes them:

* ``POST /v1/images/generations`` (JSON): ``model`` (``dall-e-2`` when absent, as the
  reference says), ``prompt`` (required; at most 32000 characters for GPT image models, 1000
  for dall-e-2, 4000 for dall-e-3), ``n`` (1 to 10; dall-e-3 only 1), ``size`` (per model:
  ``1024x1024|1536x1024|1024x1536|auto`` for gpt-image-1 and -1.5; 256/512/1024 squares for
  dall-e-2; ``1024x1024|1792x1024|1024x1792`` for dall-e-3), ``quality``, ``background``,
  ``output_format`` (``png|jpeg|webp``), ``output_compression``, ``moderation``, ``style``,
  ``user`` and ``response_format`` (``url|b64_json``, DALL-E only: "GPT image models always
  return base64-encoded images");
* ``POST /v1/images/edits`` (``multipart/form-data``): ``image`` (or ``image[]``; up to 16
  files for GPT image models, one for dall-e-2), an optional ``mask``, ``prompt`` and the
  generation fields above;
* ``GET /v1/models``, the model list (what an account check may call);
* answers ``{"created", "data": [{"b64_json"}], "usage"}`` (GPT image models also echo
  ``size``, ``quality``, ``background`` and ``output_format``), and errors in OpenAI's
  envelope ``{"error": {"message", "type", "param", "code"}}``: 401 ``invalid_api_key``,
  400 ``invalid_request_error`` (an unknown field: "Unrecognized request argument supplied"),
  400 ``moderation_blocked`` for a prompt the safety system rejects, 429 and 500.

``gpt-image-2`` (which the reference lists without a fixed size table) takes any ``WxH``
within the bounds TTAPI documents for it [inferred]: sides multiples of 16, longest side at
most 3840, ratio at most 3:1, 655,360 to 8,294,400 pixels.

Switches: ``plan`` (consumed one entry per request: an HTTP status, ``"close"`` to drop the
connection, ``"hang"`` never to answer), ``delay`` seconds before each answer. Observations:
``requests`` (method, path, fields without files, file sizes). Pictures are real, drawn by
:func:`gengate.imaging.picture.render_picture` at ``scale`` times the size asked for.
"""

from __future__ import annotations

import asyncio
import base64
import time
import zlib
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import orjson
from PIL import Image

from gengate.errors import BadRequest
from gengate.imaging.codec import decode_image
from gengate.imaging.picture import encode, render_picture
from gengate.testing.http import LocalServer, read_request

__all__ = ["FakeOpenAIImages", "ImagesRequest"]

CLOSE, HANG = "close", "hang"
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
_GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
_SIZES: dict[str, tuple[str, ...]] = {
    "gpt-image-1": _GPT_SIZES, "gpt-image-1.5": _GPT_SIZES, "gpt-image-1-mini": _GPT_SIZES,
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
}
_PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000}
_FIELDS = frozenset({"model", "prompt", "n", "size", "quality", "background", "output_format",
                     "output_compression", "moderation", "style", "user", "response_format",
                     "partial_images", "stream", "input_fidelity"})


@dataclass(slots=True)
class ImagesRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    fields: dict[str, Any]
    files: dict[str, list[int]] = field(default_factory=dict)  #: field name -> byte sizes
    authorization: str | None = None


class _Refused(Exception):
    def __init__(self, status: int, message: str, kind: str, param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = (
            status, message, kind, param, code)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


def _invalid(message: str, param: str | None = None) -> _Refused:
    return _Refused(400, message, "invalid_request_error", param)


class FakeOpenAIImages(LocalServer):
    """The HTTP/1.1 server (keep-alive)."""

    def __init__(self, *, keys: tuple[str, ...] = ("sk-test-images",), scale: float = 0.25,
                 banned_words: tuple[str, ...] = ("forbiddenword",), delay: float = 0.0):
        self.keys = set(keys)
        self.scale = scale
        self.banned_words = {w.lower() for w in banned_words}
        self.delay = delay
        self.plan: list[int | str] = []
        self.requests: list[ImagesRequest] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                method, path, headers, body = await read_request(reader)
                action = self.plan.pop(0) if self.plan else 200
                if action == CLOSE:
                    return
                if action == HANG:
                    await asyncio.Event().wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                if action != 200:
                    self.requests.append(ImagesRequest(
                        method, path.split("?", 1)[0], {},
                        authorization=headers.get("authorization")))
                    status = int(action)
                    status_body = _failure(status)
                else:
                    status, status_body = await asyncio.to_thread(
                        self._answer, method, path.split("?", 1)[0], headers, body)
                payload = orjson.dumps(status_body)
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'X')}",
                        "content-type: application/json", f"content-length: {len(payload)}"]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _answer(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, dict[str, Any]]:
        record = ImagesRequest(method, path, {}, authorization=headers.get("authorization"))
        self.requests.append(record)
        try:
            self._authorize(headers.get("authorization"))
            if method == "GET" and path == "/v1/models":
                # the models list ({"object": "list", "data": [...]}), which costs nothing
                return 200, {"object": "list", "data": [
                    {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "openai"}
                    for m in (*_SIZES, "gpt-image-2")]}
            if method == "POST" and path == "/v1/images/generations":
                fields = _json_fields(body, headers.get("content-type", ""))
                record.fields = dict(fields)
                return 200, self._generate(fields, [])
            if method == "POST" and path == "/v1/images/edits":
                fields, files = _multipart(body, headers.get("content-type", ""))
                record.fields = dict(fields)
                record.files = {k: [len(b) for b in v] for k, v in files.items()}
                images = files.get("image", []) + files.get("image[]", [])
                return 200, self._edit(fields, images, files.get("mask", []))
            raise _Refused(404, f"Invalid URL ({method} {path})", "invalid_request_error")
        except _Refused as refused:
            return refused.status, refused.body()

    def _authorize(self, header: str | None) -> None:
        scheme, _, key = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise _Refused(401, "You didn't provide an API key. You need to provide your API "
                           "key in an Authorization header using Bearer auth.",
                           "invalid_request_error")
        if key.strip() not in self.keys:
            # the real message shows the key masked; so does this one
            masked = f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"
            raise _Refused(401, f"Incorrect API key provided: {masked}.",
                           "invalid_request_error", code="invalid_api_key")

    # ------------------------------------------------------------------------ operations

    def _generate(self, fields: dict[str, Any], references: list[Image.Image]
                  ) -> dict[str, Any]:
        unknown = sorted(set(fields) - _FIELDS)
        if unknown:
            raise _invalid(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
        model = str(fields.get("model") or "dall-e-2")
        gpt = model.startswith("gpt-image")
        if not gpt and model not in _SIZES:
            raise _invalid(f"Invalid value for 'model' = {model}.", "model")
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _invalid("Missing required parameter: 'prompt'.", "prompt")
        limit = _PROMPT_LIMITS.get(model, 32000)
        if len(prompt) > limit:
            raise _invalid(f"Invalid 'prompt': string too long. Expected a string with maximum "
                           f"length {limit}, but got a string with length {len(prompt)} "
                           "instead.", "prompt")
        n = _int(fields.get("n", 1), "n")
        if not 1 <= n <= (1 if model == "dall-e-3" else 10):
            raise _invalid(f"Invalid value for 'n' = {n}.", "n")
        size = _size(model, str(fields.get("size") or ("auto" if gpt else "1024x1024")),
                     references)
        fmt = str(fields.get("output_format") or "png")
        if fmt not in ("png", "jpeg", "webp") or (fmt != "png" and not gpt):
            raise _invalid(f"Invalid value for 'output_format' = {fmt}.", "output_format")
        if "response_format" in fields and gpt:
            raise _invalid("Unknown parameter: 'response_format'.", "response_format")
        words = set(prompt.lower().replace(",", " ").split())
        if words & self.banned_words:
            raise _Refused(400, "Your request was rejected by the safety system. If you believe "
                           "this is an error, contact us.", "image_generation_user_error",
                           code="moderation_blocked")
        seed = zlib.crc32(prompt.encode())
        scaled = (max(8, round(size[0] * self.scale)), max(8, round(size[1] * self.scale)))
        data = []
        for index in range(n):
            picture = render_picture(prompt, seed + index, scaled, references)
            data.append({"b64_json": base64.b64encode(encode(picture, fmt)).decode("ascii")})
            if model == "dall-e-3":
                data[-1]["revised_prompt"] = prompt
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt:
            answer.update(background=fields.get("background") or "opaque", output_format=fmt,
                          quality=fields.get("quality") or "high",
                          size=f"{size[0]}x{size[1]}",
                          usage={"input_tokens": len(prompt.split()), "output_tokens": 1056 * n,
                                 "total_tokens": len(prompt.split()) + 1056 * n,
                                 "input_tokens_details": {"text_tokens": len(prompt.split()),
                                                          "image_tokens": 0}})
        return answer

    def _edit(self, fields: dict[str, Any], images: list[bytes],
              masks: list[bytes]) -> dict[str, Any]:
        model = str(fields.get("model") or "dall-e-2")
        if not images:
            raise _invalid("Missing required parameter: 'image'.", "image")
        most = 16 if model.startswith("gpt-image") else 1
        if len(images) > most:
            raise _invalid(f"Too many images: at most {most} for {model}.", "image")
        decoded = []
        for index, data in enumerate(images):
            if len(data) > 50 * 1024 * 1024:
                raise _invalid("Image file too large: the limit is 50MB.", "image")
            try:
                decoded.append(decode_image(data, f"image[{index}]"))
            except BadRequest as exc:
                raise _invalid(f"Invalid image file or mode for image {index + 1}: {exc}",
                               "image") from None
        if masks:
            try:
                mask = decode_image(masks[0], "mask", mode="L")
            except BadRequest as exc:
                raise _invalid(f"Invalid mask: {exc}", "mask") from None
            if mask.size != decoded[0].size:
                raise _invalid("Invalid mask: it must have the same dimensions as the image.",
                               "mask")
        for name in ("n", "output_compression", "partial_images"):
            if name in fields:
                fields[name] = _int(fields[name], name)
        return self._generate(fields, decoded)


def _failure(status: int) -> dict[str, Any]:
    kinds = {429: ("Rate limit reached for images per minute. Please try again in 1s.",
                   "requests", "rate_limit_exceeded"),
             500: ("The server had an error while processing your request. Sorry about that!",
                   "server_error", None),
             503: ("The engine is currently overloaded, please try again later.",
                   "server_error", None)}
    message, kind, code = kinds.get(status, ("Error", "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _json_fields(body: bytes, content_type: str) -> dict[str, Any]:
    if "json" not in content_type:
        raise _invalid("Invalid Content-Type header, expected application/json.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _invalid("We could not parse the JSON body of your request.") from None
    if not isinstance(data, dict):
        raise _invalid("The JSON body of your request must be an object.")
    return data


def _multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], dict[str, list[bytes]]]:
    """Form fields and files of a ``multipart/form-data`` body (parsed with the standard
    library's MIME parser, independently of the gateway's form parser)."""
    if not content_type.startswith("multipart/form-data"):
        raise _invalid("Invalid Content-Type header, expected multipart/form-data.")
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
    fields: dict[str, Any] = {}
    files: dict[str, list[bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            files.setdefault(name, []).append(data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _invalid(f"Invalid type for '{name}': expected an integer.", name) from None


def _size(model: str, text: str, references: list[Image.Image]) -> tuple[int, int]:
    if text == "auto":
        if references:
            width, height = references[0].size
            return (1536, 1024) if width > height * 1.2 else (
                (1024, 1536) if height > width * 1.2 else (1024, 1024))
        return 1024, 1024
    allowed = _SIZES.get(model)
    if allowed is not None and text not in allowed:
        raise _invalid(f"Invalid value: '{text}'. Supported values are: "
                       + ", ".join(f"'{s}'" for s in allowed) + ".", "size")
    width_text, _, height_text = text.partition("x")
    if not width_text.isdigit() or not height_text.isdigit():
        raise _invalid(f"Invalid value: '{text}'. Expected WIDTHxHEIGHT.", "size")
    width, height = int(width_text), int(height_text)
    if allowed is None and not _flexible_ok(width, height):
        raise _invalid(f"Invalid size '{text}': sides must be multiples of 16, the longest "
                       "at most 3840, the ratio at most 3:1 and the area 655360 to 8294400 "
                       "pixels.", "size")
    return width, height


def _flexible_ok(width: int, height: int) -> bool:
    return (width % 16 == 0 and height % 16 == 0 and max(width, height) <= 3840
            and max(width, height) <= 3 * min(width, height)
            and 655_360 <= width * height <= 8_294_400)
