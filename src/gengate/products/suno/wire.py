"""Suno's TTAPI shapes: the request models (validated with the contract's bounds) and the
fetch body, which is also the webhook body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from gengate.jobs import Job, JobStatus
from gengate.products.base import THREE_STATUSES
from gengate.quota import from_milli

__all__ = ["MODELS", "ConcatRequest", "ExtendRequest", "LyricsRequest", "MusicRequest",
           "UploadRequest", "fetch_body", "music_id", "parse_music_id"]

#: every ``mv`` the contract lists; chirp-v5 is the English page's default
MODELS = ("chirp-v5-5", "chirp-v5", "chirp-v4-5+", "chirp-v4-5", "chirp-v4-5-all",
          "chirp-v4", "chirp-v3-5", "chirp-v3-0")
Mv = Literal["chirp-v5-5", "chirp-v5", "chirp-v4-5+", "chirp-v4-5", "chirp-v4-5-all",
             "chirp-v4", "chirp-v3-5", "chirp-v3-0"]

_HOOK = Field(None, max_length=2048, description="Called with the fetch body when the job ends")
_WEIGHT = Field(None, ge=0, le=1, description="0 to 1 (custom mode)")
_MUSIC_ID = Field(min_length=1, max_length=100,
                  validation_alias=AliasChoices("music_id", "musicId"),
                  description="A song's `musicId` from a fetch answer")


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class MusicRequest(_Request):
    """POST /suno/v1/music"""

    custom: bool = Field(description="false: inspiration mode (a description); true: "
                         "custom mode (your lyrics, title and tags)")
    instrumental: bool = Field(description="true: no vocals (lyrics are ignored)")
    mv: Mv = Field("chirp-v5", description="The model")
    gpt_description_prompt: str | None = Field(
        None, max_length=500, description="Inspiration mode: what the song is about")
    prompt: str | None = Field(None, max_length=5000, description="Custom mode: the lyrics")
    title: str | None = Field(None, max_length=80)
    tags: str | None = Field(None, max_length=200, description="Custom mode: the style")
    negative_tags: str | None = Field(None, max_length=200)
    style_weight: float | None = _WEIGHT
    weirdness_constraint: float | None = _WEIGHT
    audio_weight: float | None = _WEIGHT
    auto_lyrics: bool = Field(False, description="Custom mode: write lyrics for an empty "
                              "prompt")
    vocal_gender: Literal["Male", "Female"] | None = None
    persona_id: str | None = Field(None, max_length=100)
    isStorage: bool = Field(True, description="false: the provider's own URLs")
    hookUrl: str | None = _HOOK


class LyricsRequest(_Request):
    """POST /suno/v1/lyrics"""

    prompt: str = Field(min_length=1, max_length=500, description="What the lyrics are about")
    hookUrl: str | None = _HOOK


class ExtendRequest(_Request):
    """POST /suno/v1/extend"""

    music_id: str = _MUSIC_ID
    continue_at: float = Field(ge=0, le=1200, description="Seconds into the song where the "
                               "extension starts")
    prompt: str | None = Field(None, max_length=5000, description="Lyrics of the extension")
    title: str | None = Field(None, max_length=80)
    tags: str | None = Field(None, max_length=200)
    mv: Mv = Field("chirp-v5", description="The model")
    hookUrl: str | None = _HOOK


class ConcatRequest(_Request):
    """POST /suno/v1/concat"""

    music_id: str = _MUSIC_ID
    hookUrl: str | None = _HOOK


class UploadRequest(_Request):
    """POST /suno/v1/upload (multipart/form-data)"""

    media_type: ClassVar[str] = "multipart/form-data"

    file: bytes = Field(description="The audio file (MP3, WAV, M4A, OGG, FLAC; up to "
                        "8 minutes)")
    hookUrl: str | None = _HOOK


def music_id(job_id: str, index: int) -> str:
    """A song's id: its job's id and its place in the job."""
    return f"{job_id}-{index}"


def parse_music_id(value: str) -> tuple[str, int] | None:
    job_id, sep, index = value.rpartition("-")
    if not sep or not index.isdigit() or len(index) > 2 or not job_id:
        return None
    return job_id, int(index)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def fetch_body(job: Job) -> dict[str, Any]:
    """``{"status", "message", "jobId", "data"}`` as fetch and webhooks send it:
    ``ON_QUEUE | SUCCESS | FAILED``, ``progress`` as ``"NN%"``, ``musics`` with two songs
    (one for concat and upload), ``lyrics`` for the lyrics action."""
    failed = job.status is JobStatus.FAILED
    params = job.params
    _, quota = job.charged()
    storage = params.get("is_storage", True) is not False
    musics = []
    for song in job.result.get("musics") or []:
        urls = song if storage else (song.get("sources") or song)
        musics.append({
            "musicId": song["musicId"], "prompt": song.get("prompt", ""),
            "title": song.get("title", ""), "tags": song.get("tags", ""),
            "imageUrl": urls.get("imageUrl"), "imageLargeUrl": urls.get("imageLargeUrl"),
            "audioUrl": urls.get("audioUrl"), "videoUrl": urls.get("videoUrl"),
            "duration": f"{float(song.get('duration') or 0):.2f}",
            "negativeTags": params.get("negative_tags") or "",
            "styleWeight": params.get("style_weight"),
            "weirdnessConstraint": params.get("weirdness_constraint"),
            "audioWeight": params.get("audio_weight"),
            "createdAt": _iso(job.finished_at),
        })
    data: dict[str, Any] = {
        "jobId": job.id, "action": job.action,
        "progress": None if failed else f"{job.progress}%",
        "mv": params.get("mv"), "quota": str(from_milli(quota)), "hookUrl": job.hook_url,
        "musics": musics,
    }
    if job.action == "lyrics":
        data["lyrics"] = job.result.get("lyrics")
    if job.action in ("extend", "concat"):
        data["musicId"] = params.get("music_id")
    message = job.message if job.status.terminal else ""
    return {"status": THREE_STATUSES.wire(job.status),
            "message": message or ("success" if job.status is JobStatus.SUCCESS else ""),
            "jobId": job.id, "data": data}
