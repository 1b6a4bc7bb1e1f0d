"""Sora's wire: the TTAPI request model and fetch body, and OpenAI's video object."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from gengate.api.schemas import _Wire
from gengate.clock import timestamp
from gengate.jobs import Job, JobStatus
from gengate.limits import MAX_URL_CHARS
from gengate.products.sora.options import SoraOptions
from gengate.products.videos import output_url, quota_text

__all__ = ["SoraGenerationRequest", "VideoCreateRequest", "fetch_body", "video_object"]

_URL = Field(None, max_length=2048)


class SoraGenerationRequest(_Wire):
    """POST /sora/generations (TTAPI)."""

    model: Literal["sora-2", "sora-2-pro"] = Field(
        description="sora-2 (normal) or sora-2-pro (HD)")
    prompt: str = Field(min_length=1, max_length=4000)
    referImages: list[Annotated[str, Field(max_length=MAX_URL_CHARS)]] | None = Field(
        None, max_length=8, description="Reference image URLs; only the first is used")
    orientation: Literal["portrait", "landscape"] = Field(
        "portrait", description="sora-2 (and pro at size small): 720x1280 or 1280x720; "
        "sora-2-pro at size large: 1024x1792 or 1792x1024")
    duration: Literal[10, 15, 25] | None = Field(
        None, description="Seconds: 10 or 15; 25 only on sora-2-pro at size small. "
        "Default 10 (sora-2), 15 (sora-2-pro)")
    size: Literal["small", "large"] | None = Field(
        None, description="sora-2-pro only; default small")
    character_url: str | None = Field(None, max_length=2048,
                                      description="A video to create a character from")
    character_timestamps: str | None = Field(
        None, max_length=32, description='"start,end" seconds of the character, 1-3 s apart')
    private: bool = False
    hookUrl: str | None = _URL
    seed: int | None = Field(None, ge=0, le=2**32 - 1,
                             description="gengate extension: the same seed and prompt "
                             "make the same video (default: derived from the jobId)")
    timeout: int | None = Field(None, description="Seconds the job may take")


class VideoCreateRequest(_Wire):
    """POST /v1/videos (OpenAI's video API; JSON or multipart form)."""

    prompt: str = Field(min_length=1, max_length=32000)
    model: str = Field("sora-2", max_length=64, description="sora-2 or sora-2-pro")
    seconds: Literal["4", "8", "12"] = "4"
    size: Literal["720x1280", "1280x720", "1024x1792", "1792x1024"] = "720x1280"


def fetch_body(job: Job, statuses: Any) -> dict[str, Any]:
    """GET|POST /sora/fetch: ``data`` with ``videoUrl``, ``finishTime``, ``quota``."""
    options = SoraOptions.from_json(job.params)
    return {
        "status": statuses.wire(job.status),
        "message": job.message if job.status is JobStatus.FAILED else "",
        "jobId": job.id,
        "data": {
            "jobId": job.id, "model": options.model, "prompt": job.prompt,
            "referImages": list(options.refer_images) or None,
            "videoUrl": output_url(job, "video"),
            "thumbnailUrl": output_url(job, "thumbnail"),
            "duration": options.duration, "orientation": options.orientation,
            "size": f"{options.width}x{options.height}",
            "quota": quota_text(job), "finishTime": timestamp(job.finished_at),
            "hookUrl": job.hook_url,
        },
    }


_OPENAI_STATUS = {JobStatus.PENDING_QUEUE: "queued", JobStatus.ON_QUEUE: "in_progress",
                  JobStatus.SUCCESS: "completed", JobStatus.FAILED: "failed"}


def video_object(job: Job) -> dict[str, Any]:
    """OpenAI's ``Video`` object for a Sora job (either front's)."""
    options = SoraOptions.from_json(job.params)
    failed = job.status is JobStatus.FAILED
    return {
        "id": job.id, "object": "video", "model": options.model,
        "status": _OPENAI_STATUS[job.status],
        "progress": 100 if job.status is JobStatus.SUCCESS else int(job.progress or 0),
        "created_at": int(job.created_at),
        "completed_at": int(job.finished_at) if job.finished_at is not None else None,
        "expires_at": None, "prompt": job.prompt,
        "seconds": str(options.duration), "size": f"{options.width}x{options.height}",
        "remixed_from_video_id": None,
        "error": {"code": "video_generation_failed", "message": job.message}
        if failed else None,
    }
