"""Sora through OpenAI's own video API (``POST /v1/videos``, ``GET /v1/videos/{id}``,
``GET /v1/videos/{id}/content``, ``DELETE /v1/videos/{id}``), as its API reference
describes it (https://platform.openai.com/docs/api-reference/videos).

The content needs the account's key, so the adapter downloads the MP4 (and the
``thumbnail`` variant) itself when the video is completed, and hands the bytes over.
OpenAI takes no caller-supplied id, so a submit whose answer was lost cannot be found.
"""

from __future__ import annotations

import contextlib

import httpx

from gengate.products.sora.options import OPENAI_SECONDS, OPENAI_SIZES, SoraOptions
from gengate.providers.base import (
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    ResultFile,
    TaskState,
)
from gengate.providers.video_http import VideoHttp, progress_of

__all__ = ["SoraOpenAiProvider", "openai_fields"]

#: the most bytes one downloaded video may have
MAX_VIDEO_BYTES = 512 * 1024 * 1024


def openai_fields(task: ProviderTask) -> dict[str, str]:
    """OpenAI's form fields for a Sora job (a TTAPI-front job maps when OpenAI can make
    its duration and size)."""
    options = SoraOptions.from_json(task.options)
    seconds, size = str(options.duration), f"{options.width}x{options.height}"
    if seconds not in OPENAI_SECONDS:
        raise ProviderError(f"[Invalid parameter] OpenAI makes videos of "
                            f"{', '.join(OPENAI_SECONDS)} seconds, not {seconds}")
    if size not in OPENAI_SIZES.get(options.model, ()):
        raise ProviderError(f"[Invalid parameter] OpenAI's {options.model} does not make "
                            f"{size}")
    return {"model": options.model, "prompt": task.prompt, "seconds": seconds, "size": size}


class SoraOpenAiProvider:
    name = "openai"
    wants_parent_image = False
    finds_by_tag = False
    supports_cancel = False

    def __init__(self, base_url: str, *, api_key: str, http: httpx.AsyncClient,
                 poll_interval: float = 5.0, timeout: float = 30.0):
        self.poll_interval = poll_interval
        self._http = VideoHttp(base_url, {"Authorization": f"Bearer {api_key}"}, api_key,
                               http, timeout)

    def __repr__(self) -> str:
        return f"SoraOpenAiProvider({self._http.base_url!r})"

    async def submit(self, task: ProviderTask) -> str:
        # multipart, as OpenAI's reference shows it: each field a part, the reference
        # image a file part
        parts: list[tuple[str, tuple[str | None, bytes | str]]] = [
            (name, (None, value)) for name, value in openai_fields(task).items()]
        if task.images:
            parts.append(("input_reference", ("reference", task.images[0])))
        response = await self._http.call("POST", "/v1/videos", files=parts)
        assert response is not None
        body = self._http.json(response)
        video_id = body.get("id")
        if not isinstance(video_id, str) or not video_id:
            raise ProviderError("[Bad response] the upstream answered no video id")
        return video_id

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        out: dict[str, ProviderUpdate] = {}
        for upstream_id in dict.fromkeys(upstream_ids):
            update = await self._poll(upstream_id)
            if update is not None:
                out[upstream_id] = update
        return out

    async def _poll(self, video_id: str) -> ProviderUpdate | None:
        response = await self._http.call("GET", f"/v1/videos/{video_id}", missing_ok=True)
        if response is None:
            return None
        body = self._http.json(response)
        status = body.get("status")
        if status == "failed":
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            assert isinstance(error, dict)
            return ProviderUpdate(TaskState.FAILED, message=str(
                error.get("message") or "[Bad response] the upstream video failed"))
        if status != "completed":
            return ProviderUpdate(TaskState.RUNNING, progress=progress_of(body.get("progress")))
        video = await self._content(video_id, "video")
        if video is None:
            return ProviderUpdate(TaskState.FAILED,
                                  message="[Bad response] the upstream has no video content")
        files = [ResultFile("video", data=video[0], content_type="video/mp4",
                            meta={"seconds": body.get("seconds"), "size": body.get("size")})]
        with contextlib.suppress(ProviderError):
            thumb = await self._content(video_id, "thumbnail")
            if thumb is not None and thumb[1].startswith("image/"):
                files.append(ResultFile("thumbnail", data=thumb[0], content_type=thumb[1]))
        return ProviderUpdate(TaskState.SUCCESS, progress=100, files=tuple(files))

    async def _content(self, video_id: str, variant: str) -> tuple[bytes, str] | None:
        response = await self._http.call("GET", f"/v1/videos/{video_id}/content",
                                         params={"variant": variant}, missing_ok=True)
        if response is None:
            return None
        if len(response.content) > MAX_VIDEO_BYTES:
            raise ProviderError("[Bad response] the upstream's video is too large")
        ctype = response.headers.get("content-type", "").split(";")[0].strip()
        return response.content, ctype

    async def probe(self) -> None:
        """Listing videos needs a valid key and costs nothing."""
        await self._http.call("GET", "/v1/videos", params={"limit": "1"})

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        return None

    async def cancel(self, upstream_id: str) -> None:
        return None

    async def forget(self, upstream_id: str) -> None:
        """The video is stored here: OpenAI's copy may go (best effort)."""
        with contextlib.suppress(ProviderError):
            await self._http.call("DELETE", f"/v1/videos/{upstream_id}", missing_ok=True)

    async def close(self) -> None:
        return None
