"""A fake midjourney-proxy: a real HTTP server on 127.0.0.1 for tests and benches.

``async with FakeMidjourneyProxy() as mj:`` serves the REST protocol of novicezk's
midjourney-proxy with trueai-org's additions (buttons, ``/mj/submit/action``, ``MODAL``,
``CANCEL``). Each account is one ``mj-api-secret``, added with :meth:`add_account`; its
object holds the switches that make the upstream misbehave (``fail_next``, ``ban``,
``captcha``, ``moderate``, ``expire_token``, ``lose_tasks``, ``fail_tasks``, ``slow``) and
what tests observe (``submissions``, ``max_running``, ``list_calls`` and ``list_sizes``,
``rejected_full``, ``requests``).

Like both proxies, every submit may carry a ``state`` that the task keeps and shows, and
``GET /mj/task/list`` lists recent tasks newest first (trueai-org: the latest 100;
novicezk: all it stores); ``list-by-condition`` filters by ``ids`` only, as in both.

A submit's ``notifyHook`` is called as both proxies call it: a POST of the task's JSON (the
fetch body), ``Content-Type: application/json`` and nothing else (no signature), not
retried, its answer only recorded (``notifications``). novicezk calls on every change from
the start on (NotifyServiceImpl, StartAndProgressHandler); trueai-org calls every 3 s while
a task is SUBMITTED or IN_PROGRESS and once at its end (its notify loop in DiscordService);
neither calls for a task still queued (NOT_START). A background loop looks for changes
every ``notify_every`` seconds of real time, at the fake's clock.

Time is computed lazily: every request first settles the account's tasks up to the clock
(running ones finish after ``duration`` seconds, queued ones take the freed slots), so no
background task runs and a test may pass its own ``clock``. Results are real images drawn by
:func:`gengate.products.midjourney.renderer.render` (grids are real 2x2 PNGs, upsamples
real quadrants), at a small ``scale`` so that tests stay fast; describe answers
:func:`gengate.products.midjourney.imaging.describe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import orjson
from PIL import Image

from gengate.errors import BadRequest
from gengate.products.midjourney import imaging
from gengate.products.midjourney.renderer import render
from gengate.testing.http import LocalServer, read_request
from gengate.testing.mjaccounts import (
    AFTER_ACCEPT,
    FLAVORS,
    NO_INSTANCE,
    NOVICEZK,
    RUNNING,
    TRUEAI,
    UNAUTHORIZED,
    FakeMjAccount,
    FakeMjTask,
    Reply,
    code_reply,
    failure_reply,
    json_reply,
)
from gengate.testing.mjnotify import HookCalls

__all__ = ["BANNED", "NOVICEZK", "TRUEAI", "FakeMidjourneyProxy", "FakeMjAccount",
           "FakeMjTask"]

_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
#: blend's ``dimensions`` and the aspect each one renders at
_DIMENSIONS = {"PORTRAIT": (2, 3), "SQUARE": (1, 1), "LANDSCAPE": (3, 2)}
_BASE64_KEYS = ("base64Array", "base64", "maskBase64")
_TASK_PATH = re.compile(r"^/mj/task/([^/]+)/(fetch|image-seed|cancel)$")
#: routes only trueai-org's proxy has (SubmitController.cs, TaskController.cs); novicezk's
#: controllers (SubmitController.java, TaskController.java) have none of them
_TRUEAI_ONLY = frozenset({"/mj/submit/action", "/mj/submit/modal"})
_TRUEAI_ONLY_TASK = frozenset({"image-seed", "cancel"})
#: novicezk's follow-up routes (SubmitController.java: change, simple-change); trueai-org's
#: SubmitController.cs has neither
_CHANGE = frozenset({"/mj/submit/change", "/mj/submit/simple-change"})
#: novicezk's /change: the actions it takes, the parents it takes them on
_CHANGE_ACTIONS = frozenset({"UPSCALE", "VARIATION", "REROLL"})
_CHANGE_PARENTS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})
_SIMPLE = re.compile(r"^\s*(\S+)\s+(?:([UV])([1-4])|(R))\s*$", re.IGNORECASE)


class FakeMidjourneyProxy(LocalServer):
    """The HTTP/1.1 server (keep-alive) and the accounts it hosts.

    ``flavor`` picks the project it behaves as: ``"trueai"`` (trueai-org's fork: buttons,
    ``/mj/submit/action``, modal, image-seed, cancel; a full queue is code 9, an unknown
    task's fetch 204 with no body, banned prompts fail after the submit) or ``"novicezk"``
    (the original: no buttons, follow-ups through ``/mj/submit/change`` and
    ``simple-change``, ``accountFilter`` ignored, a full queue is code 23, an unknown
    task's fetch 200 with an empty body, banned prompts refused with code 24).
    ``requests`` records every request as ``(method, path, secret or None)``.
    """

    #: seconds of real time between two looks for tasks whose notifyHook is due a call
    notify_every = 0.02

    def __init__(self, *, banned_words: Iterable[str] = ("forbiddenword",),
                 scale: float = 0.25, clock: Callable[[], float] = time.time,
                 flavor: str = TRUEAI):
        if flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {flavor!r}; one of {sorted(FLAVORS)}")
        self.flavor = flavor
        self.banned_words = {w.lower() for w in banned_words}
        self.scale = scale
        self.clock = clock
        self.requests: list[tuple[str, str, str | None]] = []
        self._accounts: dict[str, FakeMjAccount] = {}
        self._tasks: dict[str, tuple[FakeMjAccount, FakeMjTask]] = {}
        self._ids = itertools.count(1)
        self.port = 0
        self._closing = asyncio.Event()  # late answers end when the server stops
        self._hooks = HookCalls(flavor)
        self._notifier: asyncio.Task[None] | None = None

    def add_account(self, secret: str, *, core_size: int = 3, queue_size: int = 10,
                    duration: float = 0.2, instance_id: str | None = None) -> FakeMjAccount:
        """Host an account reached with ``mj-api-secret: secret``."""
        instance = instance_id or f"instance{len(self._accounts) + 1}"
        account = FakeMjAccount(self, core_size=core_size, queue_size=queue_size,
                                duration=duration, instance_id=instance)
        self._accounts[secret] = account
        return account

    def register(self, account: FakeMjAccount, task: FakeMjTask) -> None:
        self._tasks[task.id] = (account, task)

    def new_id(self) -> str:
        return str(1_730_000_000_000_000 + next(self._ids))

    # ------------------------------------------------------------------------- server

    async def __aenter__(self) -> FakeMidjourneyProxy:
        await super().__aenter__()
        self._notifier = asyncio.create_task(self._notify_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._notifier is not None:
            self._notifier.cancel()
            await asyncio.gather(self._notifier, return_exceptions=True)
        await super().__aexit__(*exc)

    # ---------------------------------------------------------------------- notifyHook

    async def _notify_loop(self) -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:
            while True:
                await asyncio.sleep(self.notify_every)
                hooked = [(a, t) for a, t in self._tasks.values()
                          if t.notify_hook and not self._hooks.ended(t.id)]
                for account in {id(a): a for a, _ in hooked}.values():
                    account.settle()
                for _, task in hooked:
                    body = self.task_json(task)
                    if task.notify_hook and self._hooks.due(task.id, body, self.clock()):
                        await self._hooks.call(http, task.notify_hook, task.id, body)

    @property
    def notifications(self) -> list[tuple[str, str, int | str]]:
        """(task id, status, the hook's HTTP status or the error's name) per call made."""
        return self._hooks.made

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                method, path, headers, body = await read_request(reader)
                reply = await self._answer(method, path.split("?", 1)[0], headers, body)
                if reply is None:
                    return
                head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'X')}",
                        *([f"content-type: {reply.content_type}"] if reply.body else []),
                        f"content-length: {len(reply.body)}",
                        *(f"{k}: {v}" for k, v in reply.headers)]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, path: str, headers: dict[str, str],
                      body: bytes) -> Reply | None:
        if method == "GET" and path.startswith("/mj/image/"):
            self.requests.append((method, path, None))
            return await self._image(path.removeprefix("/mj/image/").removesuffix(".png"))
        secret = headers.get("mj-api-secret")
        self.requests.append((method, path, secret))
        account = self._accounts.get(secret or "")
        if account is None:
            return UNAUTHORIZED
        account.requests.append((method, path))
        if account.token_expired:
            return UNAUTHORIZED
        account.settle()
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            return json_reply({"code": 4, "description": "request body is not JSON"}, 400)
        if path.startswith("/mj/submit/") and method == "POST":
            return await self._submit(account, path, data)
        return self._query(account, method, path, data)

    def _query(self, account: FakeMjAccount, method: str, path: str, data: Any) -> Reply:
        if path == "/mj/task/list-by-condition" and method == "POST":
            account.list_calls += 1
            ids = data.get("ids") if isinstance(data, dict) else None
            account.list_sizes.append(len(ids) if isinstance(ids, list) else len(account.tasks))
            found = (account.find(str(i)) for i in ids) if isinstance(ids, list) else (
                account.find(i) for i in list(account.tasks))
            return json_reply([self.task_json(t) for t in found if t is not None])
        if path == "/mj/task/list" and method == "GET":
            return json_reply([self.task_json(t) for t in account.recent()])
        if path == "/mj/account/list" and method == "GET":
            return json_reply([account.account_json()])
        match = _TASK_PATH.match(path)
        if match is None or (self.flavor == NOVICEZK and match[2] in _TRUEAI_ONLY_TASK):
            return self.no_route(path)
        task = account.find(match[1])
        what = match[2]
        if what == "fetch":
            if task is not None:
                return json_reply(self.task_json(task))
            # an unknown id is no 404: trueai-org's TaskController.Fetch returns a null
            # ActionResult<TaskInfo>, which ASP.NET answers 204 with no body; novicezk's
            # TaskController.fetch returns null, which Spring answers 200 with no body
            return Reply(204 if self.flavor == TRUEAI else 200, b"")
        if task is None:
            return code_reply(3, "task not found")
        if what == "image-seed":
            if task.status != "SUCCESS":
                return code_reply(4, "task status is not SUCCESS")
            return code_reply(1, "success", str(task.seed))
        if account.cancel(task):
            return code_reply(1, "success", task.id)
        return code_reply(4, f"task is already {task.status}")

    def no_route(self, path: str) -> Reply:
        """A route the project does not have: Spring's JSON error body (novicezk), or
        ASP.NET's empty 404 (trueai-org)."""
        if self.flavor == NOVICEZK:
            return json_reply({"timestamp": _iso(self.clock()), "status": 404,
                               "error": "Not Found", "path": f"/mj{path.removeprefix('/mj')}"},
                              404)
        return Reply(404, b"")

    # ------------------------------------------------------------------------ submits

    async def _submit(self, account: FakeMjAccount, path: str, data: Any) -> Reply | None:
        if not isinstance(data, dict):
            return code_reply(4, "request body must be an object")
        account.submissions.append((path, _without_base64(data)))
        failure = account.take_failure()
        if failure is not None and failure[0] not in AFTER_ACCEPT:
            return failure_reply(account, *failure)
        reply = self._take(account, path, data)
        if failure is None or reply is None:
            return reply
        kind, delay = failure
        if kind == "accept_drop":
            return None  # the task runs; the caller never hears its id
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)
        return reply

    def _take(self, account: FakeMjAccount, path: str, data: dict[str, Any]) -> Reply:
        state = data.get("state")
        if state is not None and (not isinstance(state, str) or len(state) > 255):
            # trueai-org refuses a state over 255 characters (SubmitController)
            return code_reply(4, "state is longer than 255 characters")
        handlers = {"/mj/submit/imagine": self._imagine, "/mj/submit/blend": self._blend,
                    "/mj/submit/describe": self._describe}
        if self.flavor == TRUEAI:
            handlers.update({"/mj/submit/action": self._action, "/mj/submit/modal": self._modal})
        else:
            handlers.update({"/mj/submit/change": self._change,
                             "/mj/submit/simple-change": self._simple_change})
        handler = handlers.get(path)
        if handler is None:
            return self.no_route(path)
        if account.unavailable_reason() is not None:
            return code_reply(3, NO_INSTANCE)
        wanted = (data.get("accountFilter") or {}).get("instanceId")
        # only trueai-org routes by accountFilter (SubmitController.cs); novicezk's DTOs
        # have no such field and Jackson drops it
        if self.flavor == TRUEAI and wanted and wanted != account.instance_id:
            return code_reply(3, NO_INSTANCE)
        try:
            return handler(account, data)
        except BadRequest as exc:
            return code_reply(4, str(exc))

    def _banned_word(self, prompt: str) -> str | None:
        words = set(re.findall(r"[\w-]+", prompt.lower()))
        return next((w for w in sorted(self.banned_words) if w in words), None)

    def _new(self, action: str, kind: str, prompt: str, seed: int | None,
             aspect: tuple[int, int], data: dict[str, Any], **extra: Any) -> FakeMjTask:
        """A task, keeping the submit's ``state``; without a seed, one derived from its id."""
        task_id = self.new_id()
        seed = zlib.crc32(task_id.encode()) if seed is None else seed
        state, hook = data.get("state"), data.get("notifyHook")
        return FakeMjTask(task_id, action, kind, prompt, seed, aspect,
                          submit_time=self.clock(),
                          state=state if isinstance(state, str) else None,
                          notify_hook=hook if isinstance(hook, str) and hook else None,
                          **extra)

    def _imagine(self, account: FakeMjAccount, data: dict[str, Any]) -> Reply:
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return code_reply(4, "prompt cannot be empty")
        word = self._banned_word(prompt)
        if word is not None and self.flavor == NOVICEZK:
            # novicezk refuses at submit (SubmitController.imagine, BannedPromptUtils)
            return code_reply(24, BANNED, None, promptEn=prompt, bannedWord=word)
        images = [_image_arg(v, f"base64Array[{i}]")
                  for i, v in enumerate(_list(data.get("base64Array")))]
        seed = _int_param(prompt, "seed") or zlib.crc32(prompt.encode())
        task = self._new("IMAGINE", "imagine", prompt, seed, _aspect_param(prompt), data,
                         inputs=images)
        if word is not None:  # trueai-org: accepted, then failed (DiscordService.cs)
            return account.refuse_later(task, BANNED)
        return account.admit(task)

    def _blend(self, account: FakeMjAccount, data: dict[str, Any]) -> Reply:
        images = [_image_arg(v, f"base64Array[{i}]")
                  for i, v in enumerate(_list(data.get("base64Array")))]
        if not 2 <= len(images) <= 5:
            return code_reply(4, "base64List parameter error: 2 to 5 images")
        dimensions = str(data.get("dimensions", "SQUARE")).upper()
        if dimensions not in _DIMENSIONS:
            return code_reply(4, "dimensions must be PORTRAIT, SQUARE or LANDSCAPE")
        task = self._new("BLEND", "blend", "", None, _DIMENSIONS[dimensions], data,
                         inputs=images)
        return account.admit(task)

    def _describe(self, account: FakeMjAccount, data: dict[str, Any]) -> Reply:
        image = _image_arg(data.get("base64"), "base64")
        prompts = imaging.describe(image)
        task = self._new("DESCRIBE", "describe", "", None, imaging.aspect_of(image.size), data,
                         result="describe", inputs=[image], prompts=prompts)
        return account.admit(task)

    def _action(self, account: FakeMjAccount, data: dict[str, Any]) -> Reply:
        parent = account.find(str(data.get("taskId", "")))
        if parent is None:
            return code_reply(3, "task not found")
        if parent.status != "SUCCESS":
            return code_reply(4, f"task status is {parent.status}, not SUCCESS")
        custom_id = data.get("customId")
        button = next((b for b in parent.buttons() if b.custom_id == custom_id), None)
        if button is None:
            return code_reply(4, "customId not found on the task's buttons")
        follow = button.follow
        seed = parent.seed + 1 if follow.kind == "reroll" else parent.seed
        task = self._new(follow.action, follow.kind, parent.prompt, seed, parent.aspect, data,
                         arg=follow.arg, result=follow.result, parent=parent)
        if follow.modal:
            task.status, task.description = "MODAL", "Waiting for window confirm"
            account.tasks[task.id] = task
            self.register(account, task)
            return code_reply(21, "Waiting for window confirm", task.id, status="MODAL",
                         finalPrompt=parent.prompt, remix=True)
        return account.admit(task)

    def _change(self, account: FakeMjAccount, data: dict[str, Any]) -> Reply:
        """novicezk's SubmitController.change: ``taskId``, ``action`` and ``index``."""
        if not str(data.get("taskId") or "").strip():
            return code_reply(4, "taskId不能为空")
        action = str(data.get("action") or "").upper()
        if action not in _CHANGE_ACTIONS:
            return code_reply(4, "action参数错误")
        parent = account.find(str(data["taskId"]))
        if parent is None:
            return code_reply(3, "关联任务不存在或已失效")
        if parent.status != "SUCCESS":
            return code_reply(4, "关联任务状态错误")
        if parent.action not in _CHANGE_PARENTS:
            return code_reply(4, "关联任务不允许执行变化")
        index = data.get("index")
        if action != "REROLL" and index not in (1, 2, 3, 4):
            return code_reply(4, "index参数错误")  # Discord refuses a missing index
        if action == "UPSCALE":
            kind, result = f"upsample{index}", "single"
        elif action == "VARIATION":
            kind, result = f"variation{index}", "grid"
        else:
            kind, result = "reroll", "grid"
        seed = parent.seed + 1 if action == "REROLL" else parent.seed
        task = self._new(action, kind, parent.prompt, seed, parent.aspect, data,
                         arg=None if action == "REROLL" else index, result=result,
                         parent=parent)
        return account.admit(task)

    def _simple_change(self, account: FakeMjAccount, data: dict[str, Any]) -> Reply:
        """novicezk's simple-change: ``content`` is ``"<id> U1"``, ``"<id> V3"`` or
        ``"<id> R"`` (ConvertUtils.convertChangeParams)."""
        match = _SIMPLE.match(str(data.get("content") or ""))
        if match is None:
            return code_reply(4, "content参数错误")
        letter = (match[2] or "R").upper()
        action = {"U": "UPSCALE", "V": "VARIATION", "R": "REROLL"}[letter]
        index = int(match[3]) if match[3] else None
        return self._change(account, {**data, "taskId": match[1], "action": action,
                                      "index": index})

    def _modal(self, account: FakeMjAccount, data: dict[str, Any]) -> Reply:
        task = account.find(str(data.get("taskId", "")))
        if task is None:
            return code_reply(3, "task not found")
        if task.status != "MODAL":
            return code_reply(4, f"task status is {task.status}, not MODAL")
        prompt = data.get("prompt")
        if isinstance(prompt, str) and prompt.strip():
            if self._banned_word(prompt) is not None:
                return account.refuse_later(task, BANNED)  # as imagine (DiscordService.cs)
            task.prompt = prompt
        if task.kind == "inpaint":
            if not data.get("maskBase64"):
                return code_reply(4, "maskBase64 cannot be empty")
            mask = _image_arg(data["maskBase64"], "maskBase64", mode="L")
            assert task.parent is not None
            size = self.picture(task.parent).size
            if mask.size != size:
                return code_reply(4, f"the mask is {mask.width}x{mask.height}, "
                                f"the image {size[0]}x{size[1]}")
            task.inputs = [mask]
        else:
            task.arg = _float_param(task.prompt, "zoom") or task.arg
        task.description = "Submit success"
        return account.admit(task)  # refused (23): it stays MODAL and may be confirmed again

    # ------------------------------------------------------------------------- images

    def picture(self, task: FakeMjTask) -> Image.Image:
        """The task's result image, drawn once by the local renderer."""
        if task.picture is None:
            inputs = ([self.picture(task.parent)] if task.parent else []) + task.inputs
            spec = {"action": task.kind, "arg": task.arg, "prompt": task.prompt or "blend",
                    "seed": task.seed, "aspect": list(task.aspect)}
            task.picture = render(spec, inputs, self.scale)
        return task.picture

    def png(self, task: FakeMjTask) -> bytes:
        if task.png is None:
            task.png = imaging.encode_png(self.picture(task))
        return task.png

    async def _image(self, task_id: str) -> Reply:
        found = self._tasks.get(task_id)
        if found is None:
            return json_reply({"code": 404, "description": "not found"}, 404)
        account, task = found
        account.settle()
        if task.status != "SUCCESS" or task.result == "describe" or account.losing:
            return json_reply({"code": 404, "description": "not found"}, 404)
        try:
            data = await asyncio.to_thread(self.png, task)
        except (BadRequest, ValueError) as exc:  # an input the renderer cannot use
            return json_reply({"code": 500, "description": f"render failed: {exc}"}, 500)
        return Reply(200, data, "image/png")

    def task_json(self, task: FakeMjTask) -> dict[str, Any]:
        """The task as ``/mj/task/{id}/fetch`` shows it, progress computed from the clock."""
        account = self._tasks[task.id][0]
        status, progress = task.status, "0%"
        if status == RUNNING:
            done = (self.clock() - (task.start or 0.0)) / max(account.duration, 1e-9)
            status = "SUBMITTED" if done < 0.1 else "IN_PROGRESS"
            progress = f"{min(99, int(done * 100))}%"
        elif status == "SUCCESS":
            progress = "100%"
        prompt = task.prompt
        if task.result == "describe" and status == "SUCCESS":
            prompt = "\n\n".join(f"{n}\ufe0f\u20e3 {p}" for n, p in enumerate(task.prompts, 1))
        return {
            "id": task.id, "action": task.action, "status": status, "prompt": prompt,
            "promptEn": prompt, "description": task.description,
            "submitTime": _ms(task.submit_time), "startTime": _ms(task.start),
            "finishTime": _ms(task.finish), "progress": progress,
            "imageUrl": (f"{self.base_url}/mj/image/{task.id}.png"
                         if status == "SUCCESS" and task.result != "describe" else None),
            "failReason": task.fail_reason if status in ("FAILURE", "CANCEL") else None,
            "state": task.state,
            "properties": {"finalPrompt": prompt, "discordInstanceId": account.instance_id},
            # novicezk's Task has no buttons field (support/Task.java)
            **({"buttons": [b.json() for b in task.buttons()]} if self.flavor == TRUEAI
               else {}),
        }


#: both projects' text for a banned prompt (novicezk: SubmitController.java, code 24;
#: trueai-org: DiscordService.cs, the task's failReason)
BANNED = "可能包含敏感词"


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(seconds))


def _without_base64(data: dict[str, Any]) -> dict[str, Any]:
    """The request body as recorded: images replaced by their sizes, never their bytes."""
    out = dict(data)
    for key in _BASE64_KEYS:
        if key in out:
            value = out[key]
            out[key] = ([f"<{len(str(v))} chars>" for v in value] if isinstance(value, list)
                        else f"<{len(str(value))} chars>")
    return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _image_arg(value: Any, label: str, mode: str = "RGB") -> Image.Image:
    if not isinstance(value, str):
        raise BadRequest(f"{label} is empty")
    return imaging.decode_base64_image(value, label, mode=mode)


def _int_param(prompt: str, name: str) -> int | None:
    match = re.search(rf"--{name}\s+(\d+)", prompt)
    return int(match[1]) if match else None


def _float_param(prompt: str, name: str) -> float | None:
    match = re.search(rf"--{name}\s+(\d+(?:\.\d+)?)", prompt)
    return float(match[1]) if match else None


def _aspect_param(prompt: str) -> tuple[int, int]:
    match = re.search(r"--(?:ar|aspect)\s+(\d+):(\d+)", prompt)
    return (int(match[1]), int(match[2])) if match and int(match[1]) and int(match[2]) else (1, 1)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


async def _serve_forever(port: int, secrets: list[str], duration: float, core_size: int,
                         flavor: str = TRUEAI) -> None:
    fake = FakeMidjourneyProxy(scale=1.0, flavor=flavor)
    fake.port = port
    for secret in secrets:
        fake.add_account(secret, core_size=core_size, duration=duration)
    async with fake:
        sys.stdout.write(f"fake midjourney-proxy on {fake.base_url} with {len(secrets)} "
                         "account(s)\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """``python -m gengate.testing.mjproxy --port 9100 --secret s1``: run the fake alone,
    to try upstream accounts and hosting by hand."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--secret", action="append", required=True,
                        help="an account's mj-api-secret (repeat for more accounts)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per task")
    parser.add_argument("--core-size", type=int, default=3, help="tasks running at once")
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default=TRUEAI,
                        help="the midjourney-proxy project to behave as")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.port, args.secret, args.duration, args.core_size,
                                   args.flavor))


if __name__ == "__main__":
    main()
