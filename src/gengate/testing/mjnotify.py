"""How the fake midjourney-proxy calls a submit's ``notifyHook``, as each proxy does: the
task's JSON POSTed with ``Content-Type: application/json`` and nothing else (no signature),
not retried, its answer only recorded. novicezk calls on every change from the start on
(NotifyServiceImpl, StartAndProgressHandler); trueai-org calls every 3 s while a task is
SUBMITTED or IN_PROGRESS and once at its end (its notify loop in DiscordService); neither
calls for a task still queued (NOT_START)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from gengate.testing.mjaccounts import TRUEAI

__all__ = ["ENDED", "TRUEAI_NOTIFY_EVERY", "HookCalls"]

#: the statuses a task ends in (no call follows them)
ENDED = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
#: trueai-org's notify loop: a running task's calls at most this often (DiscordService.cs)
TRUEAI_NOTIFY_EVERY = 3.0


class HookCalls:
    """The calls one fake proxy made, and the rule for the next one."""

    def __init__(self, flavor: str):
        self.flavor = flavor
        #: (task id, status, the hook's HTTP status or the error's name) per call made
        self.made: list[tuple[str, str, int | str]] = []
        #: notified task id -> (status, progress, clock) of its last call
        self._last: dict[str, tuple[str, str, float]] = {}

    def ended(self, task_id: str) -> bool:
        """Whether the task's end was called about (no call follows it)."""
        return self._last.get(task_id, ("",))[0] in ENDED

    def due(self, task_id: str, body: dict[str, Any], now: float) -> bool:
        """Whether the task, as ``body`` shows it at ``now``, is due a call."""
        status, progress = body["status"], body["progress"]
        if status == "NOT_START":
            return False
        last = self._last.get(task_id)
        if last is not None and (last[0], last[1]) == (status, progress):
            return False
        if (self.flavor == TRUEAI and status not in ENDED and last is not None
                and now - last[2] < TRUEAI_NOTIFY_EVERY):
            return False
        self._last[task_id] = (status, progress, now)
        return True

    async def call(self, http: httpx.AsyncClient, url: str, task_id: str,
                   body: dict[str, Any]) -> None:
        try:
            response = await http.post(url, content=orjson.dumps(body),
                                       headers={"content-type": "application/json"})
            outcome: int | str = response.status_code
        except httpx.HTTPError as exc:  # both proxies log it and go on
            outcome = type(exc).__name__
        self.made.append((task_id, str(body["status"]), outcome))
