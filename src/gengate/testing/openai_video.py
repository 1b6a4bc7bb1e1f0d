"""A fake of OpenAI's video API (Sora) for tests: a real HTTP server on 127.0.0.1.

Built from OpenAI's public API reference for videos
(https://platform.openai.com/docs/api-reference/videos) and its video generation guide
(https://platform.openai.com/docs/guides/video-generation), as mirrored by the official
``openai`` Python SDK's generated types (``openai/types/video.py``,
``video_create_params.py``, ``video_seconds.py``, ``video_size.py``):

- ``POST /v1/videos``: multipart form (or JSON) with ``prompt`` (required), ``model``
  (``sora-2`` default, ``sora-2-pro``), ``seconds`` (``"4"`` default, ``"8"``, ``"12"``),
  ``size`` (``720x1280`` default, ``1280x720``, ``1024x1792``, ``1792x1024``) and an
  optional ``input_reference`` file; answers a ``video`` object, ``status: queued``;
- ``GET /v1/videos/{id}``: the object; ``status`` goes ``queued -> in_progress ->
  completed`` (or ``failed`` with ``error: {code, message}``), ``progress`` 0-100;
- ``GET /v1/videos/{id}/content?variant=video|thumbnail``: the MP4 (``video/mp4``) or
  a still (the guide saves the thumbnail as ``.webp``); an error before completion;
- ``DELETE /v1/videos/{id}``: ``{id, object: "video.deleted", deleted: true}``;
- ``GET /v1/videos``: ``{object: "list", data: [...]}``;
- errors: ``{"error": {"message", "type", "param", "code"}}``; a wrong key is 401
  ``invalid_api_key``.

Test knobs (not OpenAI's): a prompt containing ``reject`` fails at its first poll
(``moderation_blocked``); ``polls_to_finish`` sets how many retrievals a video takes;
``fail_next`` answers the next requests with these statuses. Its MP4s are real, tiny
renders (:mod:`gengate.imaging.video`).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gengate.imaging.video import render_video

if TYPE_CHECKING:
    from gengate.testing import PromptServer

__all__ = ["FakeOpenAIVideos", "FakeVideo"]

_SECONDS = ("4", "8", "12")
_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")


@dataclass
class FakeVideo:
    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    created_at: int
    reference: bytes | None = None
    polls: int = 0
    status: str = "queued"
    progress: int = 0
    completed_at: int | None = None
    error: dict[str, str] | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "object": "video", "model": self.model,
                "status": self.status, "progress": self.progress,
                "created_at": self.created_at, "completed_at": self.completed_at,
                "expires_at": None, "prompt": self.prompt, "seconds": self.seconds,
                "size": self.size, "remixed_from_video_id": None, "error": self.error}


def _error(status: int, message: str, param: str | None = None,
           code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": code}}, status)


class FakeOpenAIVideos:
    """``async with FakeOpenAIVideos(api_key="k") as up:`` serves at ``up.base_url``."""

    def __init__(self, api_key: str = "sk-test", polls_to_finish: int = 2):
        self.api_key = api_key
        self.polls_to_finish = polls_to_finish
        self.videos: dict[str, FakeVideo] = {}
        #: every video created, deleted ones too
        self.created: list[FakeVideo] = []
        self.fail_next: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._server: PromptServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.base_url = ""
        self.app = Starlette(routes=[
            Route("/v1/videos", self._videos, methods=["GET", "POST"]),
            Route("/v1/videos/{video_id}", self._video, methods=["GET", "DELETE"]),
            Route("/v1/videos/{video_id}/content", self._content, methods=["GET"]),
        ])

    async def __aenter__(self) -> FakeOpenAIVideos:
        from gengate.testing import PromptServer, free_port

        port = free_port()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = PromptServer(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.stop()
        await self._task

    def _refuse(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        if self.fail_next:
            status = self.fail_next.pop(0)
            return _error(status, f"injected failure {status}")
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided", code="invalid_api_key")
        return None

    async def _videos(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        if request.method == "GET":
            return JSONResponse({"object": "list", "data": [
                v.body() for v in self.videos.values()], "has_more": False})
        reference = None
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await request.form()
            fields: dict[str, str] = {}
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    reference = await value.read()
                else:
                    fields[name] = value
        else:
            fields = {k: str(v) for k, v in (await request.json()).items()}
        if not fields.get("prompt"):
            return _error(400, "Missing required parameter: 'prompt'.", "prompt")
        model = fields.get("model", "sora-2")
        if model not in ("sora-2", "sora-2-pro"):
            return _error(400, f"Invalid model {model}", "model")
        seconds, size = fields.get("seconds", "4"), fields.get("size", "720x1280")
        if seconds not in _SECONDS:
            return _error(400, f"Invalid value for seconds: {seconds}", "seconds")
        if size not in _SIZES or (model == "sora-2" and size not in _SIZES[:2]):
            return _error(400, f"Invalid value for size: {size}", "size")
        video = FakeVideo(f"video_{next(self._ids):08x}", model, fields["prompt"], seconds,
                          size, int(time.time()), reference, fields=fields)
        self.videos[video.id] = video
        self.created.append(video)
        return JSONResponse(video.body())

    async def _video(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        video = self.videos.get(request.path_params["video_id"])
        if video is None:
            return _error(404, "Video not found", "video_id")
        if request.method == "DELETE":
            del self.videos[video.id]
            return JSONResponse({"id": video.id, "object": "video.deleted", "deleted": True})
        if video.status in ("queued", "in_progress"):
            video.polls += 1
            if "reject" in video.prompt:
                video.status = "failed"
                video.error = {"code": "moderation_blocked",
                               "message": "Your request was blocked by our moderation system."}
            elif video.polls >= self.polls_to_finish:
                video.status, video.progress = "completed", 100
                video.completed_at = int(time.time())
            else:
                video.status = "in_progress"
                video.progress = 100 * video.polls // self.polls_to_finish
        return JSONResponse(video.body())

    async def _content(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        video = self.videos.get(request.path_params["video_id"])
        if video is None:
            return _error(404, "Video not found", "video_id")
        if video.status != "completed":
            return _error(400, "Video is not ready yet", "video_id")
        width, height = (int(side) // 8 for side in video.size.split("x"))
        variant = request.query_params.get("variant", "video")
        made = await asyncio.to_thread(render_video, video.prompt, 1, (width, height),
                                       float(video.seconds))
        if variant == "video":
            return Response(made.mp4, media_type="video/mp4")
        if variant == "thumbnail":
            still = io.BytesIO()
            Image.open(io.BytesIO(made.thumbnail)).save(still, "WEBP")
            return Response(still.getvalue(), media_type="image/webp")
        return _error(400, f"Invalid value for variant: {variant}", "variant")
