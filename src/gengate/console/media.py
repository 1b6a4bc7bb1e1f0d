"""What a job made, sorted for the page: pictures, videos (with their poster) and songs,
read from the job's stored result whatever the product (Midjourney's grid and quadrants,
one picture, OpenAI's images, Sora's and Gemini's videos, Suno's two songs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gengate.jobs import Job

__all__ = ["Media", "Song", "Video", "media_of"]

_VIDEO = (".mp4", ".webm", ".mov", ".m4v")
_AUDIO = (".mp3", ".wav", ".m4a", ".ogg", ".flac", ".aac")


@dataclass(frozen=True, slots=True)
class Video:
    url: str
    poster: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Song:
    url: str
    title: str = ""
    cover: str | None = None
    seconds: float | None = None
    tags: str = ""


@dataclass(slots=True)
class Media:
    images: list[str] = field(default_factory=list)
    videos: list[Video] = field(default_factory=list)
    songs: list[Song] = field(default_factory=list)
    #: text results (Suno's lyrics)
    text: str = ""

    @property
    def thumb(self) -> str | None:
        """A still that stands for the result (a picture, a video's poster, a cover)."""
        if self.images:
            return self.images[0]
        for video in self.videos:
            if video.poster:
                return video.poster
        for song in self.songs:
            if song.cover:
                return song.cover
        return None

    def __bool__(self) -> bool:
        return bool(self.images or self.videos or self.songs or self.text)


def _kind(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    if path.endswith(_VIDEO):
        return "video"
    if path.endswith(_AUDIO):
        return "audio"
    return "image"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def media_of(job: Job) -> Media:
    result: dict[str, Any] = job.result or {}
    out = Media()

    def image(url: Any) -> None:
        if (found := _str(url)) is not None and found not in out.images:
            out.images.append(found)

    image(result.get("cdnImage"))
    for url in result.get("images") or []:
        image(url)
    image(result.get("imageUrl"))
    outputs = [o for o in result.get("outputs") or [] if isinstance(o, dict)]
    poster = next((_str(o.get("url")) for o in outputs if o.get("role") == "thumbnail"), None)
    for item in outputs:
        url = _str(item.get("url"))
        role = item.get("role")
        if url is None or role == "thumbnail":
            continue
        kind = "video" if role == "video" else "audio" if role == "audio" else _kind(url)
        if kind == "video":
            out.videos.append(Video(url, poster, _int(item.get("width")),
                                    _int(item.get("height"))))
        elif kind == "audio":
            out.songs.append(Song(url))
        else:
            image(url)
    for song in result.get("musics") or []:
        if not isinstance(song, dict) or _str(song.get("audioUrl")) is None:
            continue
        seconds = song.get("duration")
        out.songs.append(Song(
            song["audioUrl"], str(song.get("title") or ""),
            _str(song.get("imageLargeUrl")) or _str(song.get("imageUrl")),
            float(seconds) if isinstance(seconds, int | float) else None,
            str(song.get("tags") or "")))
    lyrics = result.get("lyrics")
    if isinstance(lyrics, dict):
        lyrics = lyrics.get("text") or lyrics.get("lyrics")
    if isinstance(lyrics, str):
        out.text = lyrics
    return out
