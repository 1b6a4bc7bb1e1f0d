"""OpenAI's video API as a front for Sora: ``POST /v1/videos``, ``GET /v1/videos/{id}``,
``GET /v1/videos/{id}/content`` (``variant=video|thumbnail``), in OpenAI's schema and
error format, so OpenAI's SDKs can be pointed at gengate (``base_url=<gengate>/v1``).

The jobs are Sora jobs: the same prices, queue, ledger and webhooks as ``/sora/...``, and
``/sora/fetch`` shows them too. Sources of the shape: OpenAI's API reference for videos
(https://platform.openai.com/docs/api-reference/videos) and its guide
(https://platform.openai.com/docs/guides/video-generation).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from gengate.api import schemas as s
from gengate.api.call import Call, parse_query
from gengate.api.envelope import ClientGone, read_body, send_raw
from gengate.api.errors import render_error
from gengate.api.ttapi import admit_caller
from gengate.errors import BadRequest, MethodNotAllowed, NotFound, UnsupportedMediaType
from gengate.jobs import Job, JobStatus, new_job_id
from gengate.llm.openai import OPENAI
from gengate.products.registry import Registry
from gengate.products.sora.options import OPENAI_SIZES, SoraOptions
from gengate.products.sora.product import SoraProduct, seed_of
from gengate.products.sora.wire import VideoCreateRequest, video_object
from gengate.products.videos import output_url
from gengate.runtime import Runtime

__all__ = ["VIDEO_PATHS", "VideoFront"]

_PATH = re.compile(r"^/v1/videos(?:/([^/]+)(/content)?)?$")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: documented in the OpenAPI document: path -> (methods, request model, summary)
VIDEO_PATHS: dict[str, tuple[tuple[str, ...], Any, str]] = {
    "/v1/videos": (("POST",), VideoCreateRequest, "Create a video (OpenAI's video API)"),
    "/v1/videos/{video_id}": (("GET",), None, "Retrieve a video (OpenAI's video API)"),
    "/v1/videos/{video_id}/content": (
        ("GET",), None, "Download a video's MP4 (variant=video) or its JPEG thumbnail "
        "(variant=thumbnail): a redirect to the stored file"),
}
_VARIANTS = {"video": "video", "thumbnail": "thumbnail"}


def _openai_error(status: int, message: str, _data: Any) -> dict[str, Any]:
    body = OPENAI.error_body(status, message)
    field, sep, _ = message.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", field):
        body["error"]["param"] = field
    return body


class VideoFront:
    """Serves ``/v1/videos...`` when the registry has Sora; anything else to ``fallback``."""

    def __init__(self, runtime: Callable[[], Runtime], max_body: int, fallback: Any,
                 products: Registry):
        self._runtime = runtime
        self._max_body = max_body
        self._fallback = fallback
        sora = products.get("sora") if "sora" in products else None
        self._sora = sora if isinstance(sora, SoraProduct) else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        found = _PATH.match(scope["path"]) if scope["type"] == "http" else None
        if found is None or self._sora is None:
            await self._fallback(scope, receive, send)
            return
        try:
            status, payload, headers = await self._handle(found, scope, receive)
            await send_raw(send, status, payload, headers)
        except ClientGone:
            return
        except Exception as exc:  # noqa: BLE001 - answered in OpenAI's error shape
            out = render_error(exc, _openai_error, where=scope["path"])
            await send_raw(send, out.status, out.payload, out.headers)

    async def _handle(self, found: re.Match[str], scope: dict[str, Any], receive: Any
                      ) -> tuple[int, bytes, dict[str, str]]:
        video_id, content = found.group(1), found.group(2)
        method = scope["method"]
        allowed = "GET" if video_id else "POST"
        if method != allowed:
            raise MethodNotAllowed(f"method {method} not allowed; use {allowed}",
                                   headers={"Allow": allowed})
        rt = self._runtime()
        call = Call(method, scope.get("query_string", b""), scope["headers"])
        await admit_caller(rt, call, scope, "sora")  # sets call.user_id and call.key
        if video_id is None:
            call.body = await read_body(scope, receive, self._max_body)
            job = await self._create(rt, call, scope)
            return 200, orjson.dumps(video_object(job)), {}
        job = await self._job(rt, call.user_id, video_id)
        if not content:
            return 200, orjson.dumps(video_object(job)), {}
        variant = parse_query(call.query).get("variant", "video")
        if variant not in _VARIANTS:
            raise BadRequest("variant: must be video or thumbnail")
        if job.status is not JobStatus.SUCCESS:
            raise NotFound(f"video_id: video {job.id} is not completed")
        url = output_url(job, _VARIANTS[variant])
        if url is not None:
            return 302, b"", {"Location": url, "Cache-Control": "no-store"}
        raise NotFound(f"variant: video {job.id} has no {variant}")

    async def _job(self, rt: Runtime, user_id: int, video_id: str) -> Job:
        if not _ID.fullmatch(video_id):
            raise NotFound("video_id: no such video")
        try:
            return await rt.jobs.fetch(user_id, video_id, "sora")
        except NotFound:
            raise NotFound(f"video_id: no video {video_id}") from None

    async def _create(self, rt: Runtime, call: Call, scope: dict[str, Any]) -> Job:
        assert self._sora is not None
        data, inputs = await _fields(call, scope)
        req: VideoCreateRequest = s.parse(VideoCreateRequest, data)  # type: ignore
        if req.model not in OPENAI_SIZES:
            raise BadRequest(f"model: unknown video model {req.model}; use sora-2 or "
                             "sora-2-pro")
        if req.size not in OPENAI_SIZES[req.model]:
            raise BadRequest(f"size: {req.model} makes "
                             f"{' or '.join(OPENAI_SIZES[req.model])}")
        width, height = (int(side) for side in req.size.split("x"))
        job_id = new_job_id()
        options = SoraOptions(
            model=req.model, duration=int(req.seconds),
            orientation="landscape" if width > height else "portrait",
            width=width, height=height, seed=seed_of(job_id), front="openai")
        return await self._sora.submit(rt.jobs, call.submit(), req.prompt, options, job_id,
                                       inputs=inputs)


async def _fields(call: Call, scope: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """The body as fields (JSON or multipart form, as OpenAI's SDK sends it) and the
    ``input_reference`` file, if any."""
    if not call.content_type().startswith("multipart/"):
        return call.data(), []
    body = call.body

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, receive).form(max_files=1, max_fields=32)
    except Exception as exc:  # noqa: BLE001 - python-multipart's errors have no common base
        raise BadRequest(f"body: invalid multipart form ({exc})") from None
    data: dict[str, Any] = {}
    inputs: list[bytes] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != "input_reference":
                    raise BadRequest(f"{name}: only input_reference may be a file")
                inputs.append(await value.read())
            else:
                data[name] = value
    finally:
        await form.close()
    if not data and not inputs:
        raise UnsupportedMediaType("body: an empty form")
    return data, inputs
