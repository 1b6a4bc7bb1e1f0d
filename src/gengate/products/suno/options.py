"""A Suno job's typed options (stored flat in the job's ``params``)."""

from __future__ import annotations

from dataclasses import dataclass

from gengate.products.base import Options

__all__ = ["SunoOptions"]


@dataclass(frozen=True, slots=True)
class SunoOptions(Options):
    """The fields of ``POST /suno/v1/music`` (and of extend, concat, upload, lyrics)."""

    mv: str = "chirp-v5"
    custom: bool = False
    instrumental: bool = False
    #: inspiration mode: the song's description (``gpt_description_prompt``)
    description: str = ""
    title: str = ""
    tags: str = ""
    negative_tags: str = ""
    style_weight: float | None = None
    weirdness_constraint: float | None = None
    audio_weight: float | None = None
    auto_lyrics: bool = False
    vocal_gender: str | None = None
    persona_id: str | None = None
    is_storage: bool = True
    #: the seed the local renderer derives both songs from (from the job id)
    seed: int = 0
    #: extend and concat: the caller's song (``music_id``)
    music_id: str | None = None
    #: extend: where the extension starts, seconds into the song
    continue_at: float | None = None
    #: upload: the file's name as sent
    file_name: str | None = None
