"""The poller one account's running jobs share: rounds at the account's interval, an early
round for the tasks its upstream called about, rounds further apart while it calls, and
jobs that sleep through rounds that bring them nothing new."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from gengate.providers.base import Provider, ProviderError, ProviderUpdate, TaskState
from gengate.upstreams import QUIETER, BatchPoller


class Scripted:
    """A provider whose answers the test sets; it records every poll_many call."""

    name = "scripted"

    def __init__(self) -> None:
        self.states: dict[str, TaskState] = {}
        self.progress: dict[str, int] = {}
        self.lost: set[str] = set()  #: left out of the answers
        self.calls: list[list[str]] = []
        self.fail = False
        self.asked = asyncio.Event()

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        self.calls.append(sorted(upstream_ids))
        self.asked.set()
        if self.fail:
            raise ProviderError("[Upstream unavailable] down for a moment")
        return {i: ProviderUpdate(self.states.get(i, TaskState.RUNNING), self.progress.get(i, 0))
                for i in upstream_ids if i not in self.lost}


def _poller(provider: Scripted, interval: float) -> tuple[BatchPoller, list[Any]]:
    errors: list[Any] = []

    async def on_error(exc: ProviderError) -> None:
        errors.append(exc)

    return BatchPoller(cast("Provider", provider), interval, on_error), errors


async def test_a_nudged_task_is_asked_about_alone_and_at_once() -> None:
    provider = Scripted()
    poller, errors = _poller(provider, interval=3600)  # no round comes during the test
    provider.states["t1"] = TaskState.SUCCESS
    waits = [asyncio.ensure_future(poller.poll(i)) for i in ("t1", "t2", "t3")]
    await asyncio.sleep(0)  # the polls are waiting
    poller.nudge("t1")
    poller.nudge("unknown")  # no job follows it: costs nothing
    done = await asyncio.wait_for(waits[0], 10)
    assert done is not None and done.state is TaskState.SUCCESS
    assert provider.calls == [["t1"]]
    assert not waits[1].done() and not waits[2].done()
    # a task nudged while its job was between two polls is asked as soon as it polls
    poller.nudge("t4")
    later = await asyncio.wait_for(poller.poll("t4"), 10)
    assert later is not None and provider.calls[-1] == ["t4"]
    assert errors == []
    for task in poller.cancel():
        await asyncio.gather(task, return_exceptions=True)
    for wait in waits[1:]:
        assert isinstance(wait.exception(), ProviderError)


async def test_a_failed_early_poll_leaves_the_jobs_to_the_round() -> None:
    provider = Scripted()
    provider.fail = True
    poller, errors = _poller(provider, interval=3600)
    waiting = asyncio.ensure_future(poller.poll("t1"))
    await asyncio.sleep(0)
    poller.nudge("t1")
    await asyncio.wait_for(provider.asked.wait(), 10)
    for _ in range(5):
        await asyncio.sleep(0)
    # not the job's failure, nor the account's: it waits for the round
    assert not waiting.done() and errors == []
    for task in poller.cancel():
        await asyncio.gather(task, return_exceptions=True)
    assert isinstance(waiting.exception(), ProviderError)


async def test_rounds_run_further_apart_while_the_upstream_calls() -> None:
    poller, _ = _poller(Scripted(), interval=0.5)
    assert poller.round_interval() == 0.5
    poller.nudge("t1")
    assert poller.round_interval() == 0.5 * QUIETER


async def test_a_job_sleeps_through_rounds_that_bring_it_nothing_new() -> None:
    provider = Scripted()
    poller, _ = _poller(provider, interval=0.01)
    provider.progress["t1"] = 20
    knows_20 = asyncio.ensure_future(poller.poll("t1", 20))
    knows_nothing = asyncio.ensure_future(poller.poll("t1"))
    # the first round answers the poll that knows nothing; the one that knows 20 % sleeps
    first = await asyncio.wait_for(knows_nothing, 10)
    assert first is not None and first.progress == 20
    rounds = len(provider.calls)
    while len(provider.calls) < rounds + 3:
        await asyncio.sleep(0.01)
    assert not knows_20.done()
    provider.progress["t1"] = 40  # progress: it wakes
    update = await asyncio.wait_for(knows_20, 10)
    assert update is not None and update.progress == 40
    # an end wakes it too, and so does a task the upstream lost
    provider.states["t1"] = TaskState.SUCCESS
    ended = await asyncio.wait_for(poller.poll("t1", 40), 10)
    assert ended is not None and ended.state is TaskState.SUCCESS
    provider.lost.add("t2")
    assert await asyncio.wait_for(poller.poll("t2", 40), 10) is None
    for task in poller.cancel():
        await asyncio.gather(task, return_exceptions=True)
