"""Background tasks: a failure is logged when it happens (never "Task exception was never
retrieved" at garbage collection), and a supervised loop starts again after one."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gengate.background import spawn, supervise


async def test_a_failed_task_is_logged_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise LookupError("gone")

    task = spawn(broken(), "gengate-test")
    await asyncio.wait([task])
    failures = [r for r in caplog.records if r.name == "gengate.background"]
    assert [r.getMessage() for r in failures] == [
        "event=task_failed task=gengate-test error=LookupError"]
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is LookupError


async def test_a_supervised_loop_restarts_after_a_failure(
        caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    done = asyncio.Event()

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("a bad pass")
        done.set()

    caplog.set_level(logging.ERROR)
    task = supervise(loop, "gengate-test-loop", restart_after=0)
    await asyncio.wait_for(done.wait(), 5)
    await task  # a loop that returns is not started again
    assert runs == [0, 1, 2]
    assert [r.getMessage() for r in caplog.records if r.name == "gengate.background"] == [
        "event=loop_failed task=gengate-test-loop restart_in=0"] * 2


async def test_a_supervised_loop_stops_when_cancelled() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = supervise(forever, "gengate-test-forever")
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
