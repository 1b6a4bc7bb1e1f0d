"""What the console shows of a job's result, whatever the product: pictures, a video with
its poster, songs with their covers, lyrics."""

from __future__ import annotations

import dataclasses
from typing import Any

from gengate.console.media import Song, Video, media_of
from gengate.jobs import Job, JobStatus, Mode

DONE = Job(id="j1", user_id=1, product="x", action="a", mode=Mode.FAST,
           status=JobStatus.SUCCESS, progress=100, prompt="p", quota=0, timeout=300,
           created_at=0.0, deadline=300.0)


def _of(result: dict[str, Any]) -> Any:
    return media_of(dataclasses.replace(DONE, result=result))


def test_midjourney_grid_first_then_its_quadrants() -> None:
    m = _of({"cdnImage": "https://c/g.png", "images": ["https://c/1.png", "https://c/g.png"]})
    assert m.images == ["https://c/g.png", "https://c/1.png"] and not m.videos
    assert m.thumb == "https://c/g.png"


def test_one_picture_and_openai_outputs() -> None:
    assert _of({"imageUrl": "https://c/f.png", "width": 1}).images == ["https://c/f.png"]
    m = _of({"outputs": [{"url": "https://c/a.png"}, {"url": "https://c/b.webp"}]})
    assert m.images == ["https://c/a.png", "https://c/b.webp"]


def test_a_video_with_its_poster() -> None:
    m = _of({"outputs": [
        {"role": "video", "url": "https://c/v.mp4", "width": 320, "height": 180},
        {"role": "thumbnail", "url": "https://c/v-thumbnail.jpg"}]})
    assert m.videos == [Video("https://c/v.mp4", "https://c/v-thumbnail.jpg", 320, 180)]
    assert m.images == [] and m.thumb == "https://c/v-thumbnail.jpg"


def test_two_songs_and_lyrics() -> None:
    m = _of({"musics": [
        {"musicId": "j1-0", "audioUrl": "https://c/0.mp3", "imageUrl": "https://c/0.jpg",
         "imageLargeUrl": "https://c/0-l.jpg", "title": "Sea", "duration": 31.5,
         "tags": "pop"},
        {"musicId": "j1-1", "audioUrl": "https://c/1.mp3", "title": "Sea"},
        {"musicId": "j1-2"}]})
    assert m.songs == [Song("https://c/0.mp3", "Sea", "https://c/0-l.jpg", 31.5, "pop"),
                       Song("https://c/1.mp3", "Sea")]
    assert m.thumb == "https://c/0-l.jpg"
    lyrics = _of({"lyrics": {"title": "t", "text": "la la"}})
    assert lyrics.text == "la la" and bool(lyrics)


def test_nothing_yet() -> None:
    m = _of({})
    assert not m and m.thumb is None
