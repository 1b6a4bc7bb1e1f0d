"""A fake Black Forest Labs API: a real HTTP server on 127.0.0.1 for tests and benches.

``async with FakeBfl() as bfl:`` serves the asynchronous task API of api.bfl.ai, built from
BFL's public API reference (docs.bfl.ai, "API reference": the model endpoints and "Get
Result") and its help page "Why did my request fail?" (HTTP codes and result statuses):

* ``POST /v1/<model>`` with header ``x-key`` submits a task and answers
  ``{"id", "polling_url", "cost", "input_mp", "output_mp"}`` (the model pages' AsyncResponse);
* ``GET <polling_url>`` (``/v1/get_result?id=...``) answers ``{"id", "status", "result",
  "progress", "details", "preview"}`` (ResultResponse) whose ``status`` is one of ``Pending``,
  ``Ready``, ``Request Moderated``, ``Content Moderated``, ``Error`` and ``Task not found``
  (the help page's table); on ``Ready``, ``result.sample`` is a signed URL of the picture that
  expires (BFL: "result URLs are only valid for 10 minutes"), here after ``sample_ttl``;
* HTTP errors as the help page lists them: 402 (credits), 403 (key), 422 (invalid body, in
  the ``HTTPValidationError`` shape of the OpenAPI document), 429 (more active tasks than the
  account's concurrency limit, 24 by default as BFL documents), 500 and 503.

Which fields each model takes follows its reference page: Kontext (``flux-kontext-pro``,
``-max``) and FLUX1.1 [pro] Ultra take ``aspect_ratio`` between 21:9 and 9:21 and
``input_image``..``input_image_4``; FLUX.1 [dev], [pro] and FLUX1.1 [pro] take ``width`` and
``height`` (multiples of 32, 256 to 1440); FLUX.2 models take ``width`` and ``height`` (at
least 64) and up to eight input images. Where the reference is silent the choice is marked
"[inferred]".

Time is computed lazily from ``clock``: a task is ``Pending`` for ``duration`` seconds after
it was submitted, then final. Results are real pictures drawn by
:func:`gengate.imaging_picture.render_picture` at ``scale`` times the size asked for, so that
tests stay fast.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from PIL import Image

from gengate.errors import BadRequest
from gengate.imaging.picture import encode, fit_area, parse_ratio, render_picture
from gengate.products.midjourney import imaging
from gengate.testing.http import LocalServer, read_request

__all__ = ["FakeBfl", "FakeBflTask", "MODELS"]

_REASONS = {200: "OK", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
            422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}
#: the model endpoints and how each one is sized: "ratio" (aspect_ratio at an area),
#: "wh32" (width/height, multiples of 32, 256..1440), "wh16" (FLUX.2: width/height >= 64)
MODELS: dict[str, str] = {
    "flux-kontext-pro": "ratio", "flux-kontext-max": "ratio", "flux-pro-1.1-ultra": "ratio",
    "flux-dev": "wh32", "flux-pro": "wh32", "flux-pro-1.1": "wh32",
    "flux-2-pro": "wh16", "flux-2-max": "wh16", "flux-2-flex": "wh16",
    "flux-2-klein-4b": "wh16", "flux-2-klein-9b": "wh16",
}
#: input image fields: Kontext documents four, FLUX.2 eight, FLUX.1 one ``image_prompt``
_INPUTS = {"ratio": 4, "wh16": 8, "wh32": 0}
_RESULT_PATH = re.compile(r"^/results/([0-9a-f-]+)/sample\.(png|jpeg)$")


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json(data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> _Reply:
    return _Reply(status, orjson.dumps(data), headers=tuple(headers))


def _detail(status: int, message: str) -> _Reply:
    """Errors other than validation carry ``{"detail": "..."}`` (the API is a FastAPI app,
    as its OpenAPI document's ``HTTPValidationError`` shows) [inferred for the text]."""
    return _json({"detail": message}, status)


class _Invalid(Exception):
    def __init__(self, field_name: str, message: str, value: Any = None):
        super().__init__(message)
        self.field_name, self.message, self.value = field_name, message, value


@dataclass(eq=False)
class FakeBflTask:
    """One task as the fake keeps it (tests read them through ``bfl.tasks``)."""

    id: str
    key: str
    model: str
    prompt: str
    seed: int
    size: tuple[int, int]
    output_format: str
    submitted: float
    inputs: list[Image.Image] = field(default_factory=list)
    #: the final status: Ready, Request Moderated, Content Moderated or Error
    outcome: str = "Ready"
    details: dict[str, Any] | None = None
    ready_at: float | None = None  #: when the sample was signed (Ready only)
    sample: bytes | None = None


class FakeBfl(LocalServer):
    """The HTTP/1.1 server (keep-alive).

    Switches: ``fail_next`` (HTTP statuses, or ``"close"`` to drop the connection, answered to
    the next submits in order), ``fail_tasks`` (tasks end in ``Error``), ``lose_tasks``
    (``get_result`` answers ``Task not found``), ``credits`` per key (None: unlimited; a
    submit costs one). Observations: ``requests`` (method, path, key), ``submissions``
    (model, body without images), ``tasks``.
    """

    def __init__(self, *, keys: Iterable[str] = ("bfl-test-key",), duration: float = 0.2,
                 scale: float = 0.25, clock: Callable[[], float] = time.time,
                 request_moderated: Iterable[str] = ("forbiddenword",),
                 content_moderated: Iterable[str] = ("contraband",),
                 active_limit: int = 24, sample_ttl: float = 600.0):
        self.keys = set(keys)
        self.duration = duration
        self.scale = scale
        self.clock = clock
        self.request_moderated = {w.lower() for w in request_moderated}
        self.content_moderated = {w.lower() for w in content_moderated}
        self.active_limit = active_limit
        self.sample_ttl = sample_ttl
        self.credits: dict[str, int | None] = {}
        self.fail_next: list[int | str] = []
        self.fail_tasks = False
        self.lose_tasks = False
        self.requests: list[tuple[str, str, str | None]] = []
        self.submissions: list[tuple[str, dict[str, Any]]] = []
        self.tasks: dict[str, FakeBflTask] = {}
        self.port = 0

    # ------------------------------------------------------------------------- server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                method, target, headers, body = await read_request(reader)
                reply = await self._answer(method, target, headers, body)
                if reply is None:
                    return
                head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'X')}",
                        f"content-type: {reply.content_type}",
                        f"content-length: {len(reply.body)}",
                        *(f"{k}: {v}" for k, v in reply.headers)]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, target: str, headers: dict[str, str],
                      body: bytes) -> _Reply | None:
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        key = headers.get("x-key")
        self.requests.append((method, url.path, key))
        result = _RESULT_PATH.match(url.path)
        if method == "GET" and result is not None:
            return self._sample(result[1], query)  # signed URLs need no key
        if key is None or key not in self.keys:
            # FastAPI's header-key guard answers 403 (the help page: "API key lacks access")
            return _detail(403, "Not authenticated" if key is None else "Invalid API key")
        if method == "GET" and url.path == "/v1/get_result":
            return self._result(query.get("id", ""))
        model = url.path.removeprefix("/v1/")
        if method == "POST" and model in MODELS:
            return await asyncio.to_thread(self._submit, key, model, body)
        return _detail(404, "Not Found")

    # ------------------------------------------------------------------------- submit

    def _submit(self, key: str, model: str, body: bytes) -> _Reply | None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _validation("body", "JSON decode error", None, "json_invalid")
        if not isinstance(data, dict):
            return _validation("body", "Input should be a valid dictionary", data, "dict_type")
        self.submissions.append((model, {k: v for k, v in data.items()
                                         if not k.startswith("input_image")}))
        if self.fail_next:
            failure = self.fail_next.pop(0)
            if failure == "close":
                return None
            return _detail(int(failure), _FAILURE_TEXT.get(int(failure), "Internal Server Error"))
        credits = self.credits.get(key)
        if credits is not None and credits <= 0:
            return _detail(402, "Insufficient credits")
        active = sum(1 for t in self.tasks.values() if t.key == key and self._pending(t))
        if active >= self.active_limit:
            return _detail(429, "You have exceeded your concurrency limit")
        try:
            task = self._task(key, model, data)
        except _Invalid as exc:
            return _validation(exc.field_name, exc.message, exc.value)
        if credits is not None:
            self.credits[key] = credits - 1
        self.tasks[task.id] = task
        megapixels = round(task.size[0] * task.size[1] / 1e6, 2)
        return _json({"id": task.id, "polling_url": f"{self.base_url}/v1/get_result?id={task.id}",
                      "cost": 1.0, "input_mp": 0.0, "output_mp": megapixels})

    def _task(self, key: str, model: str, data: dict[str, Any]) -> FakeBflTask:
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _Invalid("prompt", "Field required" if prompt is None
                           else "Input should be a valid string", prompt)
        output_format = data.get("output_format") or ("png" if model.startswith("flux-kontext")
                                                      else "jpeg")
        if output_format not in ("png", "jpeg"):
            raise _Invalid("output_format", "Input should be 'jpeg' or 'png'", output_format)
        tolerance = data.get("safety_tolerance", 2)
        if not isinstance(tolerance, int) or not 0 <= tolerance <= 6:
            raise _Invalid("safety_tolerance", "Input should be between 0 and 6", tolerance)
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise _Invalid("seed", "Input should be a valid integer", seed)
        webhook = data.get("webhook_url")
        if webhook is not None and (not isinstance(webhook, str) or not 1 <= len(webhook) <= 2083):
            raise _Invalid("webhook_url", "String should have 1 to 2083 characters", webhook)
        kind = MODELS[model]
        inputs = self._inputs(kind, data)
        size = _size(kind, model, data, inputs)
        task = FakeBflTask(str(uuid.uuid4()), key, model, prompt,
                           zlib.crc32(prompt.encode()) if seed is None else seed, size,
                           output_format, self.clock(), inputs)
        words = set(re.findall(r"[\w-]+", prompt.lower()))
        if words & self.request_moderated:
            task.outcome = "Request Moderated"
            task.details = {"Moderation Reasons": ["Derivative Works Filter"]}
        elif words & self.content_moderated:
            task.outcome = "Content Moderated"
            task.details = {"Moderation Reasons": ["Content Moderated"]}
        elif self.fail_tasks:
            task.outcome = "Error"
            task.details = {"error": "Internal error while generating the image"}
        return task

    def _inputs(self, kind: str, data: dict[str, Any]) -> list[Image.Image]:
        names = ["input_image", *(f"input_image_{i}" for i in range(2, _INPUTS[kind] + 1))]
        if kind == "wh32":
            names = ["image_prompt"]
        images = []
        for name in names:
            value = data.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise _Invalid(name, "Input should be a valid string", value)
            if value.startswith(("http://", "https://")):
                # the reference takes "Base64 encoded image or URL"; this fake does not fetch
                raise _Invalid(name, "This test server only takes base64 images", value[:64])
            try:
                images.append(imaging.decode_image(base64.b64decode(value, validate=True), name))
            except (binascii.Error, ValueError, BadRequest) as exc:
                raise _Invalid(name, f"Invalid image: {exc}", value[:32]) from None
        return images

    # ------------------------------------------------------------------------- results

    def _pending(self, task: FakeBflTask) -> bool:
        return self.clock() < task.submitted + self.duration

    def _result(self, task_id: str) -> _Reply:
        task = self.tasks.get(task_id)
        if task is None or self.lose_tasks:
            return _json({"id": task_id, "status": "Task not found", "result": None,
                          "progress": None, "details": None, "preview": None})
        now = self.clock()
        if now < task.submitted + self.duration:
            # [inferred] progress as a fraction; the reference only says "number | null"
            done = (now - task.submitted) / self.duration if self.duration else 0.0
            return _json({"id": task.id, "status": "Pending", "result": None,
                          "progress": round(min(0.99, done), 2), "details": None,
                          "preview": None})
        if task.outcome != "Ready":
            return _json({"id": task.id, "status": task.outcome, "result": None,
                          "progress": None, "details": task.details, "preview": None})
        if task.ready_at is None:
            task.ready_at = now
        sample = (f"{self.base_url}/results/{task.id}/sample.{task.output_format}"
                  f"?se={int((task.ready_at + self.sample_ttl) * 1000)}")
        return _json({"id": task.id, "status": "Ready", "progress": None, "details": None,
                      "preview": None,
                      "result": {"sample": sample, "prompt": task.prompt, "seed": task.seed,
                                 "start_time": task.submitted, "end_time": task.ready_at,
                                 "duration": task.ready_at - task.submitted}})

    def _sample(self, task_id: str, query: dict[str, str]) -> _Reply:
        task = self.tasks.get(task_id)
        expiry = query.get("se", "")
        if task is None or task.ready_at is None or not expiry.isdigit():
            return _blob_error(404, "BlobNotFound", "The specified blob does not exist.")
        if self.clock() * 1000 > int(expiry):
            return _blob_error(403, "AuthenticationFailed", "Signed expiry time has passed.")
        if task.sample is None:
            width, height = task.size
            scaled = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))
            picture = render_picture(task.prompt, task.seed, scaled, task.inputs)
            task.sample = encode(picture, task.output_format)
        return _Reply(200, task.sample, f"image/{task.output_format}")


_FAILURE_TEXT = {402: "Insufficient credits", 429: "You have exceeded your concurrency limit",
                 500: "Internal Server Error", 503: "Service temporarily unavailable"}


def _validation(field_name: str, message: str, value: Any, kind: str = "value_error") -> _Reply:
    loc = ["body"] if field_name == "body" else ["body", field_name]
    return _json({"detail": [{"type": kind, "loc": loc, "msg": message, "input": value}]}, 422)


def _blob_error(status: int, code: str, message: str) -> _Reply:
    """Signed sample URLs point at blob storage, which answers XML errors [inferred]."""
    body = f"<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return _Reply(status, body.encode(), "application/xml")


def _size(kind: str, model: str, data: dict[str, Any],
          inputs: list[Image.Image]) -> tuple[int, int]:
    """The picture's size as each model's reference page describes its fields."""
    if kind == "ratio":
        text = data.get("aspect_ratio")
        if text is None:
            # [inferred] without aspect_ratio Kontext keeps the input image's shape
            ratio = imaging.aspect_of(inputs[0].size) if inputs else (
                (16, 9) if model.endswith("ultra") else (1, 1))
        else:
            parsed = parse_ratio(text) if isinstance(text, str) else None
            if parsed is None or not 9 / 21 <= parsed[0] / parsed[1] <= 21 / 9:
                raise _Invalid("aspect_ratio", "Aspect ratio must be between 21:9 and 9:21",
                               text)
            ratio = parsed
        # [inferred] Kontext answers about one megapixel, Ultra about four, sides of 32
        area = 4_194_304 if model.endswith("ultra") else 1_048_576
        return fit_area(ratio, area, 32)
    if kind == "wh32":
        width, height = data.get("width", 1024), data.get("height", 768)
        for name, value in (("width", width), ("height", height)):
            if not isinstance(value, int) or not 256 <= value <= 1440 or value % 32:
                raise _Invalid(name, "Must be a multiple of 32 between 256 and 1440", value)
        return width, height
    width, height = data.get("width") or 0, data.get("height") or 0
    if not width or not height:
        # [inferred] 0 (the default) means: the first input image's size, else 1024x1024
        return (inputs[0].size if inputs else (1024, 1024))
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or value < 64:
            raise _Invalid(name, "Input should be greater than or equal to 64", value)
    if width * height > 4_194_304:
        raise _Invalid("width", "Output must be at most 4 megapixels", width)
    return 16 * round(width / 16), 16 * round(height / 16)
