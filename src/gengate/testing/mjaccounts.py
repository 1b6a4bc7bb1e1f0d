"""The fake midjourney-proxy's accounts and tasks: queues, switches and replies.

An account (one Discord instance behind one ``mj-api-secret``) starts tasks in its
``core_size`` slots, queues up to ``queue_size`` more, and finishes them ``duration`` seconds
after they start, computed lazily from its host's clock. Its switches make it misbehave the
ways real accounts do; its counters are what tests observe. The HTTP side is
:mod:`gengate.testing.mjproxy`.
"""

from __future__ import annotations

import contextlib
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from PIL import Image

__all__ = ["AFTER_ACCEPT", "FAILURES", "FLAVORS", "LIST_LIMIT", "NO_INSTANCE", "NOVICEZK", "TRUEAI",
           "FakeMjAccount", "FakeMjTask", "Reply", "code_reply", "failure_reply", "json_reply",
           "queue_full_reply"]

#: the two midjourney-proxy projects the fake can behave as
TRUEAI = "trueai"  #: github.com/trueai-org/midjourney-proxy (C#)
NOVICEZK = "novicezk"  #: github.com/novicezk/midjourney-proxy (Java, the open-source original)
FLAVORS = frozenset({TRUEAI, NOVICEZK})
#: what both answer a submit when no account instance can take it: code 3 (NOT_FOUND)
#: (trueai-org: Midjourney.Services/TaskService.cs; novicezk: service/TaskServiceImpl.java)
NO_INSTANCE = "无可用的账号实例"

#: the kinds of :meth:`FakeMjAccount.fail_next`
FAILURES = frozenset({"rate_limited", "unavailable", "queue_full", "auth", "drop", "malformed",
                      "accept_drop", "accept_late"})
#: failures that happen after the submit was taken: the task exists, the answer is lost
AFTER_ACCEPT = frozenset({"accept_drop", "accept_late"})
#: the most tasks ``GET /mj/task/list`` shows (trueai-org's TaskController.List takes the
#: latest 100 by submit time; novicezk's lists every task its store keeps)
LIST_LIMIT = 100
RUNNING = "RUNNING"  # shown as SUBMITTED, then IN_PROGRESS
TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCEL"})


class Host(Protocol):
    """What an account needs of the server that hosts it."""

    clock: Callable[[], float]
    flavor: str

    def register(self, account: FakeMjAccount, task: FakeMjTask) -> None: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer; ``None`` in its place means: drop the connection."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    return Reply(status, orjson.dumps(data), headers=tuple(headers))


def code_reply(code: int, description: str, result: str | None = None,
               **properties: Any) -> Reply:
    return json_reply({"code": code, "description": description, "result": result,
                       "properties": properties})


UNAUTHORIZED = json_reply({"code": 401, "description": "unauthorized"}, 401)


@dataclass(frozen=True, slots=True)
class Follow:
    """What a button does: the renderer's action, the upstream's action name, the
    renderer's argument, the kind of result, and whether it first waits for a modal."""

    kind: str
    action: str
    arg: Any = None
    result: str = "grid"
    modal: bool = False


@dataclass(frozen=True, slots=True)
class Button:
    custom_id: str
    label: str
    emoji: str
    follow: Follow

    def json(self) -> dict[str, Any]:
        return {"customId": self.custom_id, "emoji": self.emoji, "label": self.label,
                "type": 2, "style": 2}


def _grid_buttons(h: str) -> list[Button]:
    ups = [Button(f"MJ::JOB::upsample::{n}::{h}", f"U{n}", "",
                   Follow(f"upsample{n}", "UPSCALE", n, "single")) for n in range(1, 5)]
    reroll = Button(f"MJ::JOB::reroll::0::{h}::SOLO", "", "🔄", Follow("reroll", "REROLL"))
    vs = [Button(f"MJ::JOB::variation::{n}::{h}", f"V{n}", "",
                  Follow(f"variation{n}", "VARIATION", n)) for n in range(1, 5)]
    return [*ups, reroll, *vs]


def _upscale_buttons(h: str, redo: bool) -> list[Button]:
    prefix = "Redo Upscale" if redo else "Upscale"
    table = [("v6_2x_subtle", "(Subtle)", "subtle"), ("v6_2x_creative", "(Creative)", "creative"),
             ("v5_2x", "(2x)", 2), ("v5_4x", "(4x)", 4)]
    return [Button(f"MJ::JOB::upsample_{name}::1::{h}::SOLO", f"{prefix} {label}", "",
                    Follow(f"upscale_{arg}" if isinstance(arg, str) else f"upscale{arg}",
                            "UPSCALE", arg, "upscaled")) for name, label, arg in table]


def _single_buttons(h: str) -> list[Button]:
    pans = [Button(f"MJ::JOB::pan_{d}::1::{h}::SOLO", "", arrow,
                    Follow(f"pan_{d}", "PAN", d))
            for d, arrow in (("left", "⬅️"), ("right", "➡️"), ("up", "⬆️"), ("down", "⬇️"))]
    return [
        *_upscale_buttons(h, redo=False),
        Button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄",
                Follow("high_variation", "VARIATION", 0.45)),
        Button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄",
                Follow("low_variation", "VARIATION", 0.15)),
        Button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️",
                Follow("inpaint", "INPAINT", modal=True)),
        Button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍",
                Follow("zoom_out_2", "ZOOM", 2.0)),
        Button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍",
                Follow("zoom_out_1_5", "ZOOM", 1.5)),
        Button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍",
                Follow("zoom_out", "ZOOM", 2.0, modal=True)),
        *pans,
        # no Make Square: trueai-org's SubmitController.Action knows no make_square customId
        # (its unknown ones answer code 4 "未知的 Action 类型"), so the fake never shows one
    ]


@dataclass(eq=False)
class FakeMjTask:
    """One task as the fake keeps it (tests may read it through ``account.tasks``)."""

    id: str
    action: str  #: the upstream's name: IMAGINE, UPSCALE, ...
    kind: str  #: the local renderer's action: imagine, upsample1, ...
    prompt: str
    seed: int
    aspect: tuple[int, int]
    submit_time: float
    arg: Any = None
    result: str = "grid"  #: grid, single, upscaled or describe
    parent: FakeMjTask | None = None
    inputs: list[Image.Image] = field(default_factory=list)
    status: str = "NOT_START"
    description: str = "Submit success"
    start: float | None = None
    finish: float | None = None
    fail_reason: str | None = None  #: planned (fail_tasks) or actual
    prompts: list[str] = field(default_factory=list)  #: describe
    #: the caller's ``state`` from the submit, kept and shown as is (novicezk: Task.state,
    #: set from BaseSubmitDTO.state in SubmitController; trueai-org: TaskInfo.State)
    state: str | None = None
    #: the submit's ``notifyHook``: where the proxy POSTs the task when it changes
    notify_hook: str | None = None
    picture: Image.Image | None = None
    png: bytes | None = None

    @property
    def hash(self) -> str:
        return f"{zlib.crc32(self.id.encode()):08x}-{self.id[-6:]}"

    def buttons(self) -> list[Button]:
        """trueai-org's buttons (TaskInfo.Buttons); novicezk's Task has none."""
        if self.status != "SUCCESS":
            return []
        if self.result == "grid":
            return _grid_buttons(self.hash)
        if self.result == "single":
            return _single_buttons(self.hash)
        if self.result == "upscaled":
            return _upscale_buttons(self.hash, redo=True)
        return []


class FakeMjAccount:
    """One upstream account (one Discord instance): its switches, tasks and counters."""

    def __init__(self, server: Host, *, core_size: int, queue_size: int,
                 duration: float, instance_id: str):
        self._server = server
        self.core_size, self.queue_size, self.duration = core_size, queue_size, duration
        self.instance_id = instance_id
        self.channel_id = f"{zlib.crc32(instance_id.encode()):010d}"
        self.tasks: dict[str, FakeMjTask] = {}
        self._queue: deque[FakeMjTask] = deque()
        # switches
        self._plan: list[tuple[str, float | None]] = []
        self._fail_reasons: list[str] = []
        self.banned: str | None = None
        self.locked = False
        self.moderated = False
        self.token_expired = False
        self.losing = False
        # observability
        self.submissions: list[tuple[str, dict[str, Any]]] = []
        self.max_running = 0
        self.list_calls = 0
        #: how many task ids each ``list-by-condition`` call asked about
        self.list_sizes: list[int] = []
        self.rejected_full = 0
        self.requests: list[tuple[str, str]] = []

    def __repr__(self) -> str:  # never the secret
        return f"FakeMjAccount(instance_id={self.instance_id!r})"

    @property
    def flavor(self) -> str:
        return self._server.flavor

    # ----------------------------------------------------------------------- switches

    def fail_next(self, kind: str, times: int = 1, retry_after: float | None = None,
                  delay: float | None = None) -> None:
        """The next ``times`` submit requests fail this way (see :data:`FAILURES`).

        ``accept_drop`` takes the submit (the task exists and runs) and drops the
        connection before answering; ``accept_late`` takes it and answers only after
        ``delay`` seconds (default 5), longer than a client's timeout."""
        if kind not in FAILURES:
            raise ValueError(f"unknown failure {kind!r}; one of {sorted(FAILURES)}")
        value = (5.0 if delay is None else delay) if kind == "accept_late" else retry_after
        self._plan.extend([(kind, value)] * times)

    def slow(self, seconds: float) -> None:
        """Tasks now run for ``seconds``."""
        self.settle()
        self.duration = seconds

    def ban(self, reason: str = "account banned") -> None:
        """Submits answer code 3; running and queued tasks end FAILURE "Account banned"."""
        self.settle()
        self.banned = reason
        now = self._server.clock()
        for task in self.tasks.values():
            if task.status in (RUNNING, "NOT_START", "MODAL"):
                self._end(task, now, "FAILURE", "Account banned")
        self._queue.clear()

    def unban(self) -> None:
        self.banned = None

    def captcha(self) -> None:
        """The account is locked until a human solves a CAPTCHA (:meth:`solve`)."""
        self.locked = True

    def solve(self) -> None:
        self.locked = False

    def moderate(self) -> None:
        """The account is held for moderation until :meth:`release`."""
        self.moderated = True

    def release(self) -> None:
        self.moderated = False

    def expire_token(self) -> None:
        """Every request with this secret answers 401 until :meth:`renew_token`."""
        self.token_expired = True

    def renew_token(self) -> None:
        self.token_expired = False

    def lose_tasks(self, on: bool = True) -> None:
        """While on, the account's tasks are unknown: fetch 404, left out of lists."""
        self.losing = on

    def fail_tasks(self, reason: str, times: int = 1) -> None:
        """The next ``times`` accepted tasks end FAILURE with ``reason``."""
        self._fail_reasons.extend([reason] * times)

    # -------------------------------------------------------------------------- state

    @property
    def running(self) -> int:
        return sum(1 for t in self.tasks.values() if t.status == RUNNING)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def unavailable_reason(self) -> str | None:
        if self.banned is not None:
            return self.banned
        if self.locked:
            return "CAPTCHA verification required (locked)"
        if self.moderated:
            return "pending moderation"
        return None

    def find(self, task_id: str) -> FakeMjTask | None:
        return None if self.losing else self.tasks.get(task_id)

    def recent(self) -> list[FakeMjTask]:
        """``GET /mj/task/list``: the newest tasks first, at most :data:`LIST_LIMIT`."""
        if self.losing:
            return []
        newest = sorted(self.tasks.values(), key=lambda t: (t.submit_time, t.id), reverse=True)
        return newest[:LIST_LIMIT]

    def settle(self) -> None:
        """Bring the tasks up to the clock: finish due ones, start queued ones in the
        freed slots at the moment they were freed."""
        now = self._server.clock()
        while True:
            running = [t for t in self.tasks.values() if t.status == RUNNING]
            due = [t for t in running if (t.start or 0.0) + self.duration <= now]
            if not due:
                return
            task = min(due, key=lambda t: t.start or 0.0)
            at = (task.start or 0.0) + self.duration
            if task.fail_reason:
                self._end(task, at, "FAILURE", task.fail_reason)
            else:
                self._end(task, at, "SUCCESS")
            while self._queue and self.running < self.core_size:
                self._start(self._queue.popleft(), at)

    def admit(self, task: FakeMjTask) -> Reply:
        """Start, queue (code 22) or refuse (code 23) a new or modal-confirmed task."""
        now = self._server.clock()
        if self.running < self.core_size:
            self._accept(task)
            self._start(task, now)
            return code_reply(1, "Submit success", task.id)
        if len(self._queue) < self.queue_size:
            ahead = len(self._queue)
            self._accept(task)
            task.status = "NOT_START"
            self._queue.append(task)
            return code_reply(22, f"In queue, there are {ahead} tasks ahead", task.id,
                              numberOfQueues=ahead + 1, discordInstanceId=self.instance_id)
        self.rejected_full += 1
        return queue_full_reply(self._server.flavor)

    def refuse_later(self, task: FakeMjTask, reason: str) -> Reply:
        """Take the submit (code 1) and fail the task at once with ``reason``: trueai-org
        checks banned words after the submit and fails the task with "可能包含敏感词"
        (Midjourney.Services/DiscordService.cs, BannedPromptException)."""
        self._accept(task)
        self._end(task, self._server.clock(), "FAILURE", reason)
        return code_reply(1, "Submit success", task.id)

    def _accept(self, task: FakeMjTask) -> None:
        self.tasks[task.id] = task
        self._server.register(self, task)
        if self._fail_reasons:
            task.fail_reason = self._fail_reasons.pop(0)

    def _start(self, task: FakeMjTask, at: float) -> None:
        task.status, task.start = RUNNING, at
        self.max_running = max(self.max_running, self.running)

    def _end(self, task: FakeMjTask, at: float, status: str, reason: str | None = None) -> None:
        task.status, task.finish = status, at
        if reason is not None:
            task.fail_reason = reason
        with contextlib.suppress(ValueError):
            self._queue.remove(task)

    def take_failure(self) -> tuple[str, float | None] | None:
        return self._plan.pop(0) if self._plan else None

    def cancel(self, task: FakeMjTask) -> bool:
        if task.status in TERMINAL:
            return False
        self._end(task, self._server.clock(), "CANCEL", "Cancelled")
        while self._queue and self.running < self.core_size:
            self._start(self._queue.popleft(), self._server.clock())
        return True

    def account_json(self) -> dict[str, Any]:
        reason = self.banned if self.banned is not None else (
            "pending moderation" if self.moderated else None)
        return {"id": self.instance_id, "channelId": self.channel_id,
                "enable": self.banned is None and not self.moderated, "lock": self.locked,
                "disabledReason": reason, "coreSize": self.core_size,
                "queueSize": self.queue_size, "running": self.running, "queued": self.queued}



def failure_reply(account: FakeMjAccount, kind: str,
                  retry_after: float | None) -> Reply | None:
    """The answer of a submit that :meth:`FakeMjAccount.fail_next` made fail."""
    if kind == "drop":
        return None
    if kind == "rate_limited":
        headers = [("retry-after", f"{retry_after:g}")] if retry_after is not None else []
        return json_reply({"code": 429, "description": "too many requests"}, 429, headers)
    if kind == "unavailable":
        return Reply(503, b"Service Unavailable", "text/plain")
    if kind == "auth":
        return UNAUTHORIZED
    if kind == "malformed":
        return Reply(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
    account.rejected_full += 1
    return queue_full_reply(account.flavor)


def queue_full_reply(flavor: str) -> Reply:
    """A full queue: trueai-org answers code 9 (FAILURE) "提交失败，队列已满，请稍后重试"
    (Midjourney.Services/DiscordService.cs); novicezk code 23 (QUEUE_REJECTED)
    "队列已满，请稍后尝试" (loadbalancer/DiscordInstanceImpl.java)."""
    if flavor == TRUEAI:
        return code_reply(9, "提交失败，队列已满，请稍后重试")
    return code_reply(23, "队列已满，请稍后尝试")
