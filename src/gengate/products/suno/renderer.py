"""Suno's local renderer: real songs made on this machine.

``music`` and ``extend`` make two songs per request (as Suno does), each an MP3 whose
tempo, key and instruments follow the tags and whose form follows the lyrics, with a
cover (small and large JPEG) and an MP4 of the cover with the audio. ``concat`` joins an
extension chain into one song; ``upload`` turns a caller's audio file into a song that
can be extended; ``lyrics`` writes lyrics. Deterministic from the prompt and the seed.
Called by the engine's ``local`` upstream in a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gengate.imaging.palette import derive_seed
from gengate.products.suno import media
from gengate.products.suno.lyrics import title_for, write_lyrics
from gengate.products.suno.music import RATE, Audio, plan_song, style_from_tags, synthesize
from gengate.products.suno.options import SunoOptions
from gengate.providers.base import (
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    ResultFile,
    TaskState,
)

__all__ = ["SONGS_PER_REQUEST", "SunoRenderer", "song_roles"]

#: every music and extend request makes two songs, billed as one request
SONGS_PER_REQUEST = 2
#: the longest audio file an upload takes
MAX_UPLOAD_SECONDS = 480
_VOICES = ("Male", "Female")


def song_roles(index: int) -> dict[str, str]:
    """The result file roles of song ``index``."""
    base = f"song{index}"
    return {"audio": base, "image": f"{base}-image", "imageLarge": f"{base}-image-large",
            "video": f"{base}-video"}


class SunoRenderer:
    """Renders a Suno task: music, extend, concat, upload and lyrics."""

    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        options = SunoOptions.from_json(task.options)
        if task.action == "lyrics":
            seed = derive_seed("lyrics", task.prompt, options.seed)
            return ProviderUpdate(TaskState.SUCCESS, progress=100, data={
                "title": title_for(task.prompt), "text": write_lyrics(task.prompt, seed)})
        if task.action == "upload":
            audio = media.decode_audio(_first(task), "file")
            if audio.shape[1] > MAX_UPLOAD_SECONDS * RATE:
                raise ProviderError(f"[Invalid parameter] file: longer than "
                                    f"{MAX_UPLOAD_SECONDS // 60} minutes")
            name = (options.file_name or "upload").rsplit(".", 1)[0][:80] or "upload"
            return _songs([(audio, name, "", "", options.seed)], scale)
        if task.action == "concat":
            return _songs([(_concat(task), _s(task.params.get("title")) or "Full song",
                            _s(task.params.get("tags")), "", options.seed)], scale)
        return self._compose(task, options, scale)

    def _compose(self, task: ProviderTask, options: SunoOptions,
                 scale: float) -> ProviderUpdate:
        lyrics, tags, title = _words_of(task, options)
        seed = options.seed
        style_seed = task.params.get("style_seed")
        songs = []
        for i in range(SONGS_PER_REQUEST):
            song_seed = derive_seed(seed, "song", i)
            style = style_from_tags(_without(tags, options.negative_tags),
                                    int(style_seed) if style_seed is not None else song_seed)
            if options.weirdness_constraint:  # weirder: the two takes drift apart in tempo
                drift = 1 + (0.25 * options.weirdness_constraint) * (-1 if i else 1)
                style = type(style)(max(40, round(style.bpm * drift)), style.tonic,
                                    style.minor, style.instruments)
            voice = None if options.instrumental else (
                options.vocal_gender or _VOICES[derive_seed(song_seed, "voice") % 2])
            plan = plan_song(style, lyrics, voice=voice, seed=song_seed, scale=scale)
            audio = synthesize(plan)
            songs.append((audio, title, tags, lyrics, song_seed,
                          {"bpm": style.bpm, "key": style.key_name}))
        return _songs(songs, scale)


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _first(task: ProviderTask) -> bytes:
    if not task.images:
        raise ProviderError(f"[Bad response] {task.action} needs its input audio")
    return task.images[0]


def _words_of(task: ProviderTask, options: SunoOptions) -> tuple[str, str, str]:
    """The lyrics, tags and title to render: custom mode's own, or written from the
    description (inspiration mode, ``auto_lyrics``)."""
    seed = derive_seed("lyrics", options.seed)
    if options.custom or task.action == "extend":
        tags = options.tags or _s(task.params.get("parent_tags"))
        lyrics = task.prompt
        if not lyrics.strip() and options.auto_lyrics:
            lyrics = write_lyrics(f"{options.title} {tags}", seed)
        title = options.title or _s(task.params.get("parent_title")) or title_for(
            lyrics or tags)
    else:
        description = options.description or task.prompt
        tags, lyrics = description, write_lyrics(description, seed)
        title = title_for(description)
    if options.instrumental:
        lyrics = ""
    return lyrics, tags, title or "Untitled"


def _without(tags: str, negative: str) -> str:
    """The tags minus the negative tags' words (``negative_tags: drums`` drops drums)."""
    if not negative.strip():
        return tags
    drop = {w.strip().lower() for w in negative.replace(",", " ").split() if w.strip()}
    kept = " ".join(w for w in tags.replace(",", " , ").split() if w.lower() not in drop)
    return f"{kept} without {' '.join(sorted(drop))}" if "drums" in drop else kept


def _concat(task: ProviderTask) -> Audio:
    """An extension chain, oldest first: each part up to where the next one continued."""
    cuts = [float(c) for c in task.params.get("cuts", [])]
    parts = [media.decode_audio(data, f"song {i}") for i, data in enumerate(task.images)]
    if not parts or len(cuts) != len(parts) - 1:
        raise ProviderError("[Bad response] concat needs the whole extension chain")
    joined = [p[:, :int(c * RATE)] for p, c in zip(parts, cuts, strict=False)]
    return np.concatenate([*joined, parts[-1]], axis=1)


def _songs(songs: list[tuple[Any, ...]], scale: float) -> ProviderUpdate:
    large = max(128, int(1024 * scale))
    small = max(96, int(400 * scale))
    movie = max(128, int(540 * scale)) // 2 * 2
    files: list[ResultFile] = []
    for index, song in enumerate(songs):
        audio, title, tags, lyrics, seed = song[:5]
        extra: dict[str, Any] = song[5] if len(song) > 5 else {}
        picture = media.cover(f"{tags} {title}", title, derive_seed(seed, "cover"), large)
        duration = round(audio.shape[1] / RATE, 2)
        meta = {"index": index, "title": title, "tags": tags, "prompt": lyrics,
                "duration": duration, "seed": seed, **extra}
        roles = song_roles(index)
        files += [
            ResultFile(roles["audio"], media.encode_mp3(audio), None, "audio/mpeg", meta),
            ResultFile(roles["image"], media.encode_jpeg(picture, small), None, "image/jpeg"),
            ResultFile(roles["imageLarge"], media.encode_jpeg(picture), None, "image/jpeg"),
            ResultFile(roles["video"], media.encode_mp4(picture.resize((movie, movie)), audio),
                       None, "video/mp4"),
        ]
    return ProviderUpdate(TaskState.SUCCESS, progress=100, files=tuple(files))
