"""Suno through a TTAPI-compatible account (the hosted TTAPI service, or another
gengate). Suno has no official public API; TTAPI relays it under ``/suno/v1/...`` and
answers ``GET /suno/v2/fetch`` with ``musics``: each song's audio, cover, large cover and
video URLs (the fields of TTAPI's Suno fetch page). Transport, failure kinds and key
hygiene are the shared TTAPI relay's (:mod:`gengate.providers.ttapi_relay`); this module
says what each Suno task sends and how a Suno fetch body is read.
"""

from __future__ import annotations

from typing import Any

from gengate.products.suno.renderer import song_roles
from gengate.providers.base import (
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    ResultFile,
    TaskState,
)
from gengate.providers.ttapi_relay import RelayRequest, failed

__all__ = ["FETCH_PATH", "build", "read"]

FETCH_PATH = "/suno/v2/fetch"
V1 = "/suno/v1"
#: options passed on as they are when set (the field names of TTAPI's music page)
_CUSTOM_FIELDS = ("title", "tags", "negative_tags", "style_weight", "weirdness_constraint",
                  "audio_weight")
_FILES = (("audioUrl", "audio", "audio/mpeg"), ("imageUrl", "image", "image/jpeg"),
          ("imageLargeUrl", "imageLarge", "image/jpeg"), ("videoUrl", "video", "video/mp4"))


def build(task: ProviderTask) -> RelayRequest:
    """The upstream request of a Suno task."""
    if task.action == "upload":
        if not task.images:
            raise ProviderError("[Invalid parameter] upload needs its file")
        name = str(task.options.get("file_name") or "upload.mp3")
        return RelayRequest(f"{V1}/upload", files=[
            ("file", (name, task.images[0], "application/octet-stream"))])
    if task.action == "lyrics":
        return RelayRequest(f"{V1}/lyrics", json={"prompt": task.prompt})
    if task.action in ("extend", "concat"):
        return RelayRequest(f"{V1}/{task.action}", json=_follow_up(task))
    if task.action != "music":
        raise ProviderError(f"[Invalid parameter] the upstream cannot run {task.action}")
    return RelayRequest(f"{V1}/music", json=_music(task))


def _follow_up(task: ProviderTask) -> dict[str, Any]:
    """extend and concat name the song by the upstream's own ``musicId``."""
    music = task.params.get("music_id")
    if not music:
        raise ProviderError(f"[Invalid parameter] {task.action} needs the song upstream")
    if task.action == "concat":
        return {"music_id": music}
    options = task.options
    body: dict[str, Any] = {"music_id": music,
                            "continue_at": task.params.get("continue_at") or 0,
                            "mv": options.get("mv") or "chirp-v5"}
    for name in ("title", "tags"):
        if options.get(name):
            body[name] = options[name]
    if task.prompt:
        body["prompt"] = task.prompt
    return body


def _music(task: ProviderTask) -> dict[str, Any]:
    """``POST /suno/v1/music``'s body: the mode's fields, the others only when set."""
    options = task.options
    custom = bool(options.get("custom"))
    body: dict[str, Any] = {"custom": custom, "instrumental": bool(options.get("instrumental")),
                            "mv": options.get("mv") or "chirp-v5", "isStorage": True}
    if custom:
        body["prompt"] = task.prompt
        for name in _CUSTOM_FIELDS:
            if options.get(name) not in (None, ""):
                body[name] = options[name]
        if options.get("auto_lyrics"):
            body["auto_lyrics"] = True
    else:
        body["gpt_description_prompt"] = options.get("description") or task.prompt
    for name in ("vocal_gender", "persona_id"):
        if options.get(name):
            body[name] = options[name]
    return body


def read(body: dict[str, Any]) -> ProviderUpdate:
    """A Suno fetch body: running with its ``"NN%"`` progress, failed with its message,
    or the songs' files (or the lyrics)."""
    found = body.get("data")
    data: dict[str, Any] = found if isinstance(found, dict) else {}
    status = body.get("status")
    if status == "FAILED":
        return failed(body)
    if status != "SUCCESS":
        return ProviderUpdate(TaskState.RUNNING, progress=min(99, _percent(data.get("progress"))))
    lyrics = data.get("lyrics")
    if data.get("action") == "lyrics" and isinstance(lyrics, dict):
        return ProviderUpdate(TaskState.SUCCESS, progress=100, data={
            "title": str(lyrics.get("title") or ""), "text": str(lyrics.get("text") or "")})
    files: list[ResultFile] = []
    musics = data.get("musics")
    for index, song in enumerate(musics if isinstance(musics, list) else []):
        if not isinstance(song, dict) or not isinstance(song.get("audioUrl"), str):
            continue
        roles = song_roles(index)
        meta = {"musicId": song.get("musicId"), "title": song.get("title") or "",
                "tags": song.get("tags") or "", "prompt": song.get("prompt") or "",
                "duration": _number(song.get("duration"))}
        for field, part, content_type in _FILES:
            url = song.get(field)
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                files.append(ResultFile(roles[part], url=url, content_type=content_type,
                                        meta=meta if part == "audio" else {}))
    if not files:
        return ProviderUpdate(TaskState.FAILED,
                              message="[Bad response] the upstream finished without a song")
    return ProviderUpdate(TaskState.SUCCESS, progress=100, files=tuple(files))


def _percent(value: Any) -> int:
    """``"50%"``, ``"50"`` or ``50`` as a whole percentage (0 when unreadable)."""
    if isinstance(value, str):
        value = value.strip().rstrip("%")
    return max(0, min(100, int(_number(value))))


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
