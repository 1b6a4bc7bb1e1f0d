"""A video upstream speaking TTAPI's protocol (the hosted TTAPI service, or another
gengate): submit to the product's generation path, poll its fetch path, download the
video (and a thumbnail where the upstream gives one). Used by Sora (``/sora/...``) and
Gemini video (``/gemini/video/...``); each product says how its task becomes a body and
which ``data`` field holds the video.

TTAPI has no bulk fetch and cannot stop a task; a submit whose answer was lost cannot be
found again (no caller-supplied id). The key travels in ``TT-API-KEY`` only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from gengate.accounts import FailureKind
from gengate.providers.base import (
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    ResultFile,
    TaskState,
)
from gengate.providers.video_http import VideoHttp, progress_of

__all__ = ["TtapiVideoProvider", "TtapiVideoWire"]


@dataclass(frozen=True, slots=True)
class TtapiVideoWire:
    """One product's paths and field names on TTAPI's wire."""

    submit_path: str
    fetch_path: str
    body: Callable[[ProviderTask], dict[str, Any]]
    video_field: str
    thumbnail_field: str


class TtapiVideoProvider:
    name = "ttapi"
    wants_parent_image = False
    finds_by_tag = False
    supports_cancel = False

    def __init__(self, wire: TtapiVideoWire, base_url: str, *, api_key: str,
                 http: httpx.AsyncClient, poll_interval: float = 5.0,
                 timeout: float = 30.0):
        self.wire = wire
        self.poll_interval = poll_interval
        self._http = VideoHttp(base_url, {"TT-API-KEY": api_key}, api_key, http, timeout)

    def __repr__(self) -> str:
        return f"TtapiVideoProvider({self._http.base_url!r})"

    async def submit(self, task: ProviderTask) -> str:
        response = await self._http.call("POST", self.wire.submit_path,
                                         json=self.wire.body(task))
        assert response is not None
        body = self._http.json(response)
        data = body.get("data")
        job_id = (data.get("jobId") or data.get("job_id")) if isinstance(data, dict) else None
        if body.get("status") == "FAILED" or not isinstance(job_id, str) or not job_id:
            message = body.get("message")
            raise ProviderError(str(message) if message else
                                "[Bad response] the upstream answered no jobId")
        return job_id

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        ids = list(dict.fromkeys(upstream_ids))
        answers = await asyncio.gather(*(self._fetch(i) for i in ids))
        return {i: a for i, a in zip(ids, answers, strict=True) if a is not None}

    async def _fetch(self, upstream_id: str) -> ProviderUpdate | None:
        response = await self._http.call("GET", self.wire.fetch_path,
                                         params={"jobId": upstream_id}, missing_ok=True)
        if response is None:
            return None
        body = self._http.json(response)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        status = body.get("status")
        if status == "FAILED":
            message = body.get("message")
            return ProviderUpdate(TaskState.FAILED, message=str(message) if message else
                                  "[Bad response] the upstream task failed")
        if status != "SUCCESS":
            return ProviderUpdate(TaskState.RUNNING, progress=progress_of(data.get("progress")))
        url = data.get(self.wire.video_field)
        if not isinstance(url, str) or not url:
            return ProviderUpdate(TaskState.FAILED,
                                  message="[Bad response] the upstream finished without a video")
        files = [ResultFile("video", url=url, content_type="video/mp4")]
        thumb = data.get(self.wire.thumbnail_field)
        if isinstance(thumb, str) and thumb:
            files.append(ResultFile("thumbnail", url=thumb, content_type="image/jpeg"))
        return ProviderUpdate(TaskState.SUCCESS, progress=100, files=tuple(files))

    async def probe(self) -> None:
        """A fetch of an id nobody has: 404 (or a FAILED envelope) means the key works."""
        try:
            await self._http.call("GET", self.wire.fetch_path,
                                  params={"jobId": "gengate-probe"}, missing_ok=True)
        except ProviderError as exc:
            if exc.kind is not FailureKind.JOB:
                raise

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        return None

    async def cancel(self, upstream_id: str) -> None:
        return None

    async def forget(self, upstream_id: str) -> None:
        return None

    async def close(self) -> None:
        return None
