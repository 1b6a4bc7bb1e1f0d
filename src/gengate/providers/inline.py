"""Upstreams that answer a generation in the same HTTP request that asks for it (Google's
Gemini API, TTAPI's synchronous ``/gemini/image/generate``).

To fit the engine's submit-then-poll contract, :meth:`InlineProvider.submit` starts that
request in the background and answers a local task id at once; :meth:`poll_many` reports
it running until the answer is in. A worker that dies takes the request with it: the task
is then unknown (lost), as for an upstream that forgot it. OpenAI's Images adapter is one
too.
"""

from __future__ import annotations

import asyncio
import uuid

from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)

__all__ = ["InlineProvider"]


class InlineProvider:
    """Base of an adapter whose upstream answers inline; subclasses implement
    :meth:`check` (refuse before any call) and :meth:`call` (the one request)."""

    name = "inline"
    #: the local task ids start with this (the adapter's name when empty)
    id_prefix = ""
    wants_parent_image = False
    supports_cancel = True  #: the request in flight is abandoned
    #: the answer comes in the request itself; there is no task to look up
    finds_by_tag = False
    #: a poll only looks at a local task: cheap, so often (the answer is seen soon)
    MAX_POLL_INTERVAL = 0.2

    def __init__(self, poll_interval: float = MAX_POLL_INTERVAL) -> None:
        self.poll_interval = min(poll_interval, self.MAX_POLL_INTERVAL)
        self._running: dict[str, asyncio.Task[ProviderUpdate]] = {}

    def check(self, task: ProviderTask) -> None:
        """Raise :class:`ProviderError` for what the upstream would refuse."""

    async def call(self, task: ProviderTask) -> ProviderUpdate:
        raise NotImplementedError

    async def submit(self, task: ProviderTask) -> str:
        self.check(task)
        upstream_id = f"{self.id_prefix or self.name}-{uuid.uuid4().hex}"
        self._running[upstream_id] = asyncio.create_task(self.call(task))
        return upstream_id

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        """Never called (:attr:`finds_by_tag` is false): nothing to look up."""
        return None

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        out = {}
        for upstream_id in upstream_ids:
            running = self._running.get(upstream_id)
            if running is None:
                continue  # not started here, or this process restarted: lost
            if not running.done():
                out[upstream_id] = ProviderUpdate(TaskState.RUNNING, progress=50)
                continue
            error = running.exception()
            if isinstance(error, ProviderError):
                # one request's failure: the account's (the job moves to another account,
                # which the worker reports against this one) or the job's
                out[upstream_id] = ProviderUpdate(TaskState.FAILED, message=str(error),
                                                  kind=error.kind)
            elif error is not None:
                out[upstream_id] = ProviderUpdate(
                    TaskState.FAILED, message=f"[Upstream error] {type(error).__name__}",
                    kind=FailureKind.UNAVAILABLE)
            else:
                out[upstream_id] = running.result()
        return out

    async def outcome(self, upstream_id: str) -> ProviderUpdate | None:
        """Wait for the request's answer; the update :meth:`poll_many` then reports (None:
        no such request here)."""
        running = self._running.get(upstream_id)
        if running is None:
            return None
        await asyncio.gather(running, return_exceptions=True)
        return (await self.poll_many([upstream_id])).get(upstream_id)

    async def cancel(self, upstream_id: str) -> None:
        running = self._running.pop(upstream_id, None)
        if running is not None:
            running.cancel()

    async def forget(self, upstream_id: str) -> None:
        self._running.pop(upstream_id, None)

    async def close(self) -> None:
        for running in self._running.values():
            running.cancel()
        self._running.clear()
