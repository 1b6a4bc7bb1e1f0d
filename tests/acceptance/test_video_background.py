"""The local upstream renders videos in the background: a poll starts the render and
answers "running", so two videos render at once in the render processes and the other
tasks' polls (an image here) are answered meanwhile, not after the videos."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import av

from gengate.providers.base import ProviderTask, ProviderUpdate, TaskState
from gengate.providers.local import LocalProvider


def _video(job_id: str, seed: int) -> ProviderTask:
    return ProviderTask(job_id=job_id, action="generations", prompt="a misty mountain lake",
                        mode="sora-2", product="sora",
                        options={"width": 1280, "height": 720, "duration": 2, "seed": seed})


def _image(job_id: str) -> ProviderTask:
    return ProviderTask(job_id=job_id, action="imagine", prompt="a paper boat", mode="fast",
                        seed=1, aspect=(1, 1), version="7")


async def _until_done(local: LocalProvider, ids: list[str]) -> dict[str, ProviderUpdate]:
    # each poll answers as soon as a render ends (or after a short wait): no sleeping here
    async with asyncio.timeout(180):
        while True:
            out = await local.poll_many(ids)
            if all(out[i].state is not TaskState.RUNNING for i in ids):
                return out


def _frames(mp4: bytes) -> tuple[int, int, int]:
    with av.open(io.BytesIO(mp4), "r") as container:
        stream = container.streams.video[0]
        return stream.width, stream.height, len(list(container.decode(video=0)))


async def test_two_videos_render_at_once_and_an_image_does_not_wait(tmp_path: Path) -> None:
    local = LocalProvider(tmp_path / "local", scale=0.25)
    ids = [await local.submit(task) for task in (_video("v1", 1), _video("v2", 2),
                                                  _image("img"))]
    first = await local.poll_many(ids)
    # both renders are under way in the render processes; the image is drawn meanwhile
    assert [first[i].state for i in ids] == [TaskState.RUNNING, TaskState.RUNNING,
                                             TaskState.SUCCESS]
    assert [first[i].progress for i in ids[:2]] == [75, 75]
    image = first[ids[2]].image
    assert image is not None and image.startswith(b"\x89PNG")
    done = await _until_done(local, ids[:2])
    mp4s = []
    for upstream_id in ids[:2]:
        update = done[upstream_id]
        assert update.state is TaskState.SUCCESS
        assert [f.role for f in update.files] == ["video", "thumbnail"]
        video = update.files[0].data
        assert video is not None
        assert _frames(video) == (320, 180, 48)
        mp4s.append(video)
    assert mp4s[0] != mp4s[1]  # two seeds, two pictures
    # a later poll (a worker taking the job over, say) answers the kept result
    again = await local.poll_many(ids[:1])
    assert again[ids[0]].files[0].data == mp4s[0]


async def test_a_forgotten_video_is_not_answered_when_its_render_ends(tmp_path: Path) -> None:
    local = LocalProvider(tmp_path / "local", scale=0.25)
    gone, kept = [await local.submit(_video(f"v{i}", i)) for i in (1, 2)]
    first = await local.poll_many([gone, kept])
    assert {u.state for u in first.values()} == {TaskState.RUNNING}
    await local.forget(gone)  # cancelled: its task and its render in flight are dropped
    assert await local.poll_many([gone]) == {}
    assert (await _until_done(local, [kept]))[kept].state is TaskState.SUCCESS
    assert not (tmp_path / "local" / gone).exists()
