"""The completion events synchronous routes wait on (gengate.waiting.JobEnds): woken by the
job's end, shared by several waiters, a recheck after missed notifications, 504 with the
jobId at the timeout, and nothing left behind."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gengate.errors import GatewayTimeout
from gengate.jobs import Job, JobStatus, Mode
from gengate.waiting import JobEnds

RUNNING = Job(id="j1", user_id=1, product="gemini_image", action="generate", mode=Mode.FAST,
              status=JobStatus.ON_QUEUE, progress=0, prompt="p", quota=2000, timeout=300,
              created_at=0.0, deadline=300.0)


class Row:
    """The job as the database holds it; counts the reads."""

    def __init__(self) -> None:
        self.job = RUNNING
        self.reads = 0

    async def read(self) -> Job:
        self.reads += 1
        return self.job


async def test_waiters_wake_on_the_end_of_their_job_only() -> None:
    ends, row = JobEnds(), Row()
    first = asyncio.create_task(ends.wait("j1", row.read, 30))
    second = asyncio.create_task(ends.wait("j1", row.read, 30))
    await asyncio.sleep(0)  # both have read once and wait
    assert len(ends) == 1 and row.reads == 2
    ends.ended("another-job")
    await asyncio.sleep(0)
    assert not first.done() and row.reads == 2  # no poll, no re-read
    row.job = dataclasses.replace(RUNNING, status=JobStatus.SUCCESS)
    ends.ended("j1")
    assert (await first).status is JobStatus.SUCCESS
    assert (await second).status is JobStatus.SUCCESS
    assert len(ends) == 0 and row.reads == 4


async def test_a_recheck_reads_again_and_waits_on() -> None:
    ends, row = JobEnds(), Row()
    waiter = asyncio.create_task(ends.wait("j1", row.read, 30))
    await asyncio.sleep(0)
    ends.recheck()  # the listener reconnected: the job is still running
    for _ in range(3):
        await asyncio.sleep(0)
    assert not waiter.done() and row.reads == 2 and len(ends) == 1
    row.job = dataclasses.replace(RUNNING, status=JobStatus.FAILED, message="no")
    ends.ended("j1")
    assert (await waiter).status is JobStatus.FAILED


async def test_the_timeout_is_a_504_naming_the_job_and_leaves_nothing() -> None:
    ends, row = JobEnds(), Row()
    with pytest.raises(GatewayTimeout) as timeout:
        await ends.wait("j1", row.read, 0.01)
    assert timeout.value.status_code == 504
    assert timeout.value.data == {"jobId": "j1", "job_id": "j1"}
    assert len(ends) == 0


async def test_an_ended_job_answers_at_once_and_a_cancelled_waiter_leaves_nothing() -> None:
    ends, row = JobEnds(), Row()
    row.job = dataclasses.replace(RUNNING, status=JobStatus.SUCCESS)
    assert (await ends.wait("j1", row.read, 30)).status is JobStatus.SUCCESS
    row.job = RUNNING
    waiter = asyncio.create_task(ends.wait("j1", row.read, 30))
    await asyncio.sleep(0)
    waiter.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(ends) == 0


async def test_a_pause_ends_with_the_job_or_after_its_seconds() -> None:
    ends = JobEnds()
    paused = asyncio.create_task(ends.pause("j1", 30))
    await asyncio.sleep(0)
    assert len(ends) == 1 and not paused.done()
    ends.ended("j1")
    await paused
    assert len(ends) == 0
    # nobody ends it: the pause is over after its time, and leaves nothing behind
    await ends.pause("j1", 0)
    assert len(ends) == 0
