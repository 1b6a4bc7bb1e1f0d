"""The ``midjourney_proxy`` upstream: one account of a midjourney-proxy server.

Speaks both projects of that name, told apart per account (``protocol``: ``auto``, the
default, ``trueai`` or ``novicezk``):

- trueai-org's fork: ``/mj/submit/imagine|blend|describe`` start work, follow-up actions
  press one of the parent task's ``buttons`` through ``/mj/submit/action`` (buttons that need
  more input, such as Vary (Region), answer code 21 with a task in ``MODAL`` that
  ``/mj/submit/modal`` confirms); the seed of a finished task comes from
  ``/mj/task/{id}/image-seed``; ``accountFilter`` pins the Discord instance.
- novicezk's original: the same three submits, but tasks carry no ``buttons`` and the only
  follow-ups are U1-U4, V1-V4 and reroll of a grid, through ``/mj/submit/change``
  (``taskId``, ``action`` UPSCALE|VARIATION|REROLL, ``index``); it has no action, modal,
  image-seed or cancel route and ignores ``accountFilter``.

``auto`` tells them apart by the parent task: a task with a ``buttons`` field comes from
trueai-org's fork. Both poll every running task of the account in one request
(``/mj/task/list-by-condition``). A ``seed`` job has no upstream task of its own, so its id
is ``seed:<parent id>``. A finished task's update names the follow-up actions the account
can run on it (``data["actions"]``), so that no other is offered or charged.

Every failure becomes a :class:`ProviderError` here, with a public message that starts with
a bracketed class (``[Upstream busy]``, ``[Banned prompt detected]``...) and the
:class:`FailureKind` that tells routing whether the job or the account is at fault.

Account-level task failures: when a task ends ``FAILURE`` for a reason that is the
account's (banned, CAPTCHA, moderation, token, no instance available),
:meth:`MidjourneyProxyProvider.poll_many` reports it as ``FAILED`` with that
:class:`FailureKind` on the update (the worker sends the job to another account) and a
message that starts with ``[Upstream account] `` followed by the upstream's reason;
:func:`failure_kind` gives the kind back from such a message (``None`` for the job's own
failures).

The ``mj-api-secret`` never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Mapping
from typing import Any

import httpx

from gengate.accounts import FailureKind
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate, TaskState

__all__ = ["ACCOUNT_PREFIX", "BUTTONS", "PROTOCOLS", "UNSUPPORTED", "MidjourneyProxyProvider",
           "classify", "failure_kind", "with_mode"]

#: messages of account-level task failures start with this (see the module's docstring)
ACCOUNT_PREFIX = "[Upstream account] "
#: a seed job's id is this prefix and the parent's upstream id (no upstream task of its own)
SEED_PREFIX = "seed:"
#: the most ids in one list-by-condition request
CHUNK = 100
#: ``protocol`` values of an account
PROTOCOLS = ("auto", "trueai", "novicezk")
#: messages of actions the account's proxy cannot run start with this: the upstream's
#: limit, not the user's prompt (never an illegal-prompt count)
UNSUPPORTED = "[Unsupported action] "
#: novicezk's /mj/submit/change: our action -> (action, index)
CHANGES: dict[str, tuple[str, int | None]] = {
    **{f"upsample{n}": ("UPSCALE", n) for n in range(1, 5)},
    **{f"variation{n}": ("VARIATION", n) for n in range(1, 5)},
    "reroll": ("REROLL", None),
}
#: the upstream actions novicezk's /change takes a parent of (SubmitController.change)
_CHANGE_PARENTS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})
#: the titles of Midjourney's own failures that the prompt causes; trueai-org stores them as
#: "title, description", novicezk as "[title] description"
_PROMPT_TITLES = ("Banned prompt detected", "Banned prompt", "Invalid parameter",
                  "Invalid link!", "Invalid link", "Image denied", "Invalid prompt")
#: trueai-org fails a task whose prompt holds a banned word with this (DiscordService.cs)
_SENSITIVE = "可能包含敏感词"
_BRACKETED = re.compile(r"^\[[^\[\]]{1,80}\] ?")

#: our action name -> the customId prefix of the button that does it
BUTTONS: dict[str, str] = {
    **{f"upsample{n}": f"MJ::JOB::upsample::{n}::" for n in range(1, 5)},
    **{f"variation{n}": f"MJ::JOB::variation::{n}::" for n in range(1, 5)},
    "reroll": "MJ::JOB::reroll::0::",
    "upscale_subtle": "MJ::JOB::upsample_v6_2x_subtle::",
    "redo_upscale_subtle": "MJ::JOB::upsample_v6_2x_subtle::",
    "upscale_creative": "MJ::JOB::upsample_v6_2x_creative::",
    "redo_upscale_creative": "MJ::JOB::upsample_v6_2x_creative::",
    "upscale2": "MJ::JOB::upsample_v5_2x::",
    "redo_upscale2": "MJ::JOB::upsample_v5_2x::",
    "upscale4": "MJ::JOB::upsample_v5_4x::",
    "redo_upscale4": "MJ::JOB::upsample_v5_4x::",
    "high_variation": "MJ::JOB::high_variation::",
    "low_variation": "MJ::JOB::low_variation::",
    "zoom_out_2": "MJ::Outpaint::50::",
    "zoom_out_1_5": "MJ::Outpaint::75::",
    **{f"pan_{d}": f"MJ::JOB::pan_{d}::" for d in ("left", "right", "up", "down")},
    "make_square": "MJ::JOB::make_square::",
    "inpaint": "MJ::Inpaint::",
}

#: what ``_request`` answers, with ``missing_ok``, for a route the proxy does not have
NO_ROUTE: Any = object()
_RUNNING = frozenset({"NOT_START", "SUBMITTED", "IN_PROGRESS", "MODAL"})
#: transport failures that happen before a request leaves: the upstream never saw it
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MARKER = re.compile(r"^\s*[1-9]\ufe0f?\u20e3\s*")
_PERCENT = re.compile(r"(\d+)")
#: (words in a description, kind) in the order they are tried; the first match wins
_CLUES: tuple[tuple[tuple[str, ...], FailureKind], ...] = (
    (("captcha", "verify", "verification", "locked"), FailureKind.CAPTCHA),
    (("moderation", "pending mod"), FailureKind.MODERATION),
    (("banned", "blocked", "suspended"), FailureKind.BANNED),
    (("token", "unauthorized", "expired"), FailureKind.AUTH),
    (("no available account",), FailureKind.UNAVAILABLE),
)


def classify(description: str) -> FailureKind:
    """The kind of failure an upstream's description (a code 3/9 answer or a task's
    failReason) names; :attr:`FailureKind.JOB` when it names none of the account's."""
    text = description.lower()
    if "prompt" in text and ("banned" in text or "blocked" in text):
        return FailureKind.JOB  # the prompt was refused, not the account
    for words, kind in _CLUES:
        if any(word in text for word in words):
            return kind
    return FailureKind.JOB


def failure_kind(message: str) -> FailureKind | None:
    """The account-level kind of a ``FAILED`` update's message, or ``None`` when the failure
    is the job's own (see the module's docstring)."""
    if not message.startswith(ACCOUNT_PREFIX):
        return None
    kind = classify(message.removeprefix(ACCOUNT_PREFIX))
    return kind if kind.account_level else FailureKind.UNAVAILABLE


def _error(kind: FailureKind, description: str) -> ProviderError:
    """A :class:`ProviderError` for an account- or job-level refusal with this text."""
    if kind is FailureKind.UNAVAILABLE:
        return ProviderError(f"[Upstream unavailable] {description}", kind=kind)
    if kind.account_level:
        return ProviderError(f"{ACCOUNT_PREFIX}{description}", kind=kind)
    return ProviderError(f"[Upstream failed] {description}", kind=kind)


_MODE_FLAG = re.compile(r"(?:^|\s)--(?:fast|relax|turbo)(?=\s|$)", re.IGNORECASE)


def with_mode(prompt: str, mode: str) -> str:
    """The prompt with exactly one speed flag, the slot's: Midjourney takes the mode from
    the prompt, so a job moved to a relax slot must say ``--relax`` whatever it said."""
    return f"{_MODE_FLAG.sub('', prompt).strip()} --{mode}" if mode else prompt


def _data_url(data: bytes) -> str:
    """A data URL with the media type the bytes' signature names (PNG when unknown)."""
    media = "image/png"
    if data.startswith(b"\xff\xd8"):
        media = "image/jpeg"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        media = "image/webp"
    elif data.startswith((b"GIF87a", b"GIF89a")):
        media = "image/gif"
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


def _dimensions(aspect: tuple[int, int]) -> str:
    width, height = aspect
    return "SQUARE" if width == height else "LANDSCAPE" if width > height else "PORTRAIT"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _progress(value: Any) -> int:
    match = _PERCENT.search(str(value or ""))
    return min(99, int(match[1])) if match else 0


class MidjourneyProxyProvider:
    """One midjourney-proxy account, reached at ``base_url`` with its ``mj-api-secret``.

    ``instance_id`` pins submits to one of the proxy's Discord instances (``accountFilter``);
    the ``http`` client is shared and belongs to the caller.
    """

    name = "midjourney_proxy"
    wants_parent_image = False
    finds_by_tag = True

    def __init__(self, base_url: str, *, http: httpx.AsyncClient, secret: str | None = None,
                 instance_id: str | None = None, poll_interval: float = 2.0,
                 timeout: float = 30.0, protocol: str | None = None):
        if (protocol or "auto") not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
        self.base_url = base_url.rstrip("/")
        self.protocol = protocol or "auto"
        self.instance_id = instance_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._http = http
        self._headers = {"mj-api-secret": secret} if secret else {}

    def __repr__(self) -> str:
        return (f"MidjourneyProxyProvider({self.base_url!r}, "
                f"instance_id={self.instance_id!r}, protocol={self.protocol!r})")

    def _speaks(self, task: Mapping[str, Any]) -> str:
        """The account's protocol: configured, or told by a task of its own (only
        trueai-org's tasks have ``buttons``)."""
        if self.protocol != "auto":
            return self.protocol
        return "trueai" if "buttons" in task else "novicezk"

    # ------------------------------------------------------------------------ transport

    async def _request(self, method: str, path: str, body: Any = None, *,
                       missing_ok: bool = False) -> Any:
        """The upstream's JSON answer; every transport or HTTP failure becomes a
        :class:`ProviderError` of the right kind.

        With ``missing_ok``, a 404 (a route the proxy does not have) is :data:`NO_ROUTE`,
        and an answer with no body is ``None``: an unknown task's fetch is 204 with no body
        on trueai-org's proxy (a null ``ActionResult``) and 200 with an empty body on
        novicezk's (Spring's null), neither of them the account's fault.

        A failure after the request may have been sent (a read timeout, a connection
        dropped before the answer) is ``uncertain``: the upstream may have acted on it."""
        try:
            response = await self._http.request(
                method, f"{self.base_url}{path}", json=body, headers=self._headers,
                timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise ProviderError("[Upstream unavailable] the midjourney-proxy timed out",
                                kind=FailureKind.UNAVAILABLE,
                                uncertain=not isinstance(exc, _UNSENT)) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"[Upstream unavailable] could not reach the midjourney-proxy "
                f"({type(exc).__name__})", kind=FailureKind.UNAVAILABLE,
                uncertain=not isinstance(exc, _UNSENT)) from exc
        status = response.status_code
        if status == 404 and missing_ok:
            return NO_ROUTE
        self._check_status(status, response)
        if missing_ok and (status == 204 or not response.content.strip()):
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError("[Upstream unavailable] the midjourney-proxy answered "
                                "something that is not JSON",
                                kind=FailureKind.UNAVAILABLE) from exc

    @staticmethod
    def _check_status(status: int, response: httpx.Response) -> None:
        if status in (401, 403):
            raise ProviderError("[Upstream account] the midjourney-proxy rejected the "
                                "account's secret", kind=FailureKind.AUTH)
        if status == 429:
            raise ProviderError("[Upstream busy] the midjourney-proxy is rate limiting",
                                kind=FailureKind.RATE_LIMITED,
                                retry_after=_retry_after(response))
        if status >= 500:
            raise ProviderError(f"[Upstream unavailable] the midjourney-proxy answered "
                                f"{status}", kind=FailureKind.UNAVAILABLE)
        if status >= 400:
            raise ProviderError(f"[Upstream failed] the midjourney-proxy answered {status}",
                                kind=FailureKind.JOB)

    async def _submit(self, path: str, body: dict[str, Any], mode: str | None = None,
                      tag: str | None = None) -> dict[str, Any]:
        """POST a submit; the reply when the upstream took it (codes 1, 21, 22).

        ``accountFilter`` names the Discord instance when the account is pinned to one,
        and the speed mode the job's slot is for (trueai-org's proxy routes by it).
        ``tag`` travels as ``state``, the caller's own value that both proxies keep on the
        task and show with it (:meth:`find`)."""
        if tag:
            body["state"] = tag
        account_filter: dict[str, Any] = {}
        if self.instance_id:
            account_filter["instanceId"] = self.instance_id
        if mode:
            account_filter["modes"] = [mode.upper()]
        if account_filter:
            body["accountFilter"] = account_filter
        reply = await self._request("POST", path, body)
        if not isinstance(reply, Mapping) or "code" not in reply:
            raise ProviderError("[Upstream unavailable] the midjourney-proxy answered "
                                "without a code", kind=FailureKind.UNAVAILABLE)
        code = reply.get("code")
        if code in (1, 21, 22):
            if not reply.get("result"):
                raise ProviderError("[Upstream unavailable] the midjourney-proxy accepted "
                                    "the task without an id", kind=FailureKind.UNAVAILABLE)
            return dict(reply)
        raise await self._why(code, reply)

    async def _why(self, code: Any, reply: Mapping[str, Any]) -> ProviderError:
        """The error of a refused submit; for "no instance" (code 3), the reason the
        account list gives (banned, CAPTCHA, moderation...), which both proxies keep
        out of the submit's answer."""
        error = self._refusal(code, str(reply.get("description") or ""),
                              reply.get("properties") or {})
        if code == 3:
            try:
                await self.probe()
            except ProviderError as exc:
                if exc.kind.account_level:
                    return exc
        return error

    @staticmethod
    def _refusal(code: Any, description: str, properties: Mapping[str, Any]) -> ProviderError:
        """A refused submit, by its code (both projects' ReturnCode): the description is
        the proxy's own text, Chinese in both, so it only decorates the message."""
        if code == 23:  # QUEUE_REJECTED: novicezk's full queue
            return ProviderError(f"[Upstream busy] {description or 'the queue is full'}",
                                 kind=FailureKind.QUEUE_FULL)
        if code == 9:  # FAILURE: trueai-org's full queue, or another fault of its own
            return ProviderError(f"[Upstream busy] {description or 'the upstream failed'}",
                                 kind=FailureKind.QUEUE_FULL)
        if code == 3:  # NOT_FOUND: no account instance can take it (无可用的账号实例)
            return ProviderError(f"[Upstream unavailable] {description or 'no instance'}",
                                 kind=FailureKind.UNAVAILABLE)
        if code == 24:  # BANNED_PROMPT
            word = properties.get("bannedWord") if isinstance(properties, Mapping) else None
            detail = f"`{word}` is not allowed" if word else description or "banned prompt"
            return ProviderError(f"[Banned prompt detected] {detail}", kind=FailureKind.JOB)
        if code == 4:  # VALIDATION_ERROR of what gengate sent: not the user's prompt
            return ProviderError(f"[Upstream failed] the upstream refused the request: "
                                 f"{description or 'validation failed'}", kind=FailureKind.JOB)
        return _error(classify(description), description or f"upstream code {code}")

    # ---------------------------------------------------------------------------- submit

    async def submit(self, task: ProviderTask) -> str:
        if task.action == "imagine":
            body: dict[str, Any] = {"prompt": with_mode(task.prompt, task.mode)}
            if task.images:
                body["base64Array"] = [_data_url(image) for image in task.images]
            return str((await self._submit("/mj/submit/imagine", body, task.mode,
                                           task.tag))["result"])
        if task.action == "blend":
            body = {"base64Array": [_data_url(image) for image in task.images],
                    "dimensions": _dimensions(task.aspect)}
            return str((await self._submit("/mj/submit/blend", body, task.mode,
                                           task.tag))["result"])
        if task.action == "describe":
            if not task.images:
                raise ProviderError("[Invalid parameter] describe needs an image")
            body = {"base64": _data_url(task.images[0])}
            return str((await self._submit("/mj/submit/describe", body, task.mode,
                                           task.tag))["result"])
        if task.action == "seed":
            return f"{SEED_PREFIX}{self._parent(task)}"
        return await self._press(task)

    @staticmethod
    def _parent(task: ProviderTask) -> str:
        if not task.parent_upstream_id:
            raise ProviderError(f"[Invalid parameter] {task.action} needs the parent's "
                                "upstream task")
        return task.parent_upstream_id

    async def _press(self, task: ProviderTask) -> str:
        """A follow-up action: on trueai-org's proxy, press the parent's button for it,
        then confirm the modal when the upstream waits for one; on novicezk's, ask
        ``/mj/submit/change`` for it."""
        if task.action == "inpaint" and not task.images:
            raise ProviderError("[Invalid parameter] inpaint needs a mask")
        parent_id = self._parent(task)
        parent = await self._request("GET", f"/mj/task/{parent_id}/fetch", missing_ok=True)
        if not isinstance(parent, Mapping):
            raise ProviderError("[Upstream failed] the upstream no longer knows the parent "
                                "task", kind=FailureKind.JOB)
        if self._speaks(parent) == "novicezk":
            return await self._change(task, parent_id, parent)
        prefix = BUTTONS.get(task.action)
        custom_id = None if prefix is None else next(
            (str(b["customId"]) for b in parent.get("buttons") or []
             if isinstance(b, Mapping) and str(b.get("customId", "")).startswith(prefix)),
            None)
        if custom_id is None:
            raise ProviderError(f"{UNSUPPORTED}the upstream offers no {task.action} on this "
                                "task", kind=FailureKind.JOB)
        reply = await self._submit("/mj/submit/action",
                                   {"taskId": parent_id, "customId": custom_id}, task.mode,
                                   task.tag)
        task_id = str(reply["result"])
        if reply["code"] == 21 and await self._is_modal(reply, task_id):
            await self._confirm(task, task_id)
        return task_id

    async def _change(self, task: ProviderTask, parent_id: str,
                      parent: Mapping[str, Any]) -> str:
        """novicezk's follow-up: U1-U4, V1-V4 or reroll of a grid (SubmitController.change)."""
        change = CHANGES.get(task.action)
        if change is None or parent.get("action") not in _CHANGE_PARENTS:
            raise ProviderError(f"{UNSUPPORTED}this midjourney-proxy (novicezk) cannot run "
                                f"{task.action} on this task", kind=FailureKind.JOB)
        action, index = change
        body: dict[str, Any] = {"taskId": parent_id, "action": action}
        if index is not None:
            body["index"] = index
        if task.tag:
            body["state"] = task.tag
        reply = await self._request("POST", "/mj/submit/change", body)
        if not isinstance(reply, Mapping) or "code" not in reply:
            raise ProviderError("[Upstream unavailable] the midjourney-proxy answered "
                                "without a code", kind=FailureKind.UNAVAILABLE)
        if reply.get("code") in (1, 21, 22) and reply.get("result"):
            return str(reply["result"])
        raise await self._why(reply.get("code"), reply)

    async def _confirm(self, task: ProviderTask, task_id: str) -> None:
        """Confirm a task waiting in ``MODAL`` with the job's prompt (and mask)."""
        body: dict[str, Any] = {"taskId": task_id, "prompt": task.prompt}
        if task.action == "inpaint":
            body["maskBase64"] = _data_url(task.images[0])
        try:
            await self._submit("/mj/submit/modal", body)
        except ProviderError as exc:
            if not exc.uncertain:  # refused: do not leave it waiting for its modal
                await self.cancel(task_id)
            raise  # uncertain: found again by the action's tag, confirmed if still MODAL

    async def _is_modal(self, reply: Mapping[str, Any], task_id: str) -> bool:
        """Code 21 means "exists" or "waits for a modal"; the task's status tells which."""
        properties = reply.get("properties")
        if isinstance(properties, Mapping) and properties.get("status"):
            return bool(properties["status"] == "MODAL")
        found = await self._request("GET", f"/mj/task/{task_id}/fetch", missing_ok=True)
        return isinstance(found, Mapping) and found.get("status") == "MODAL"

    # ------------------------------------------------------------------------------ find

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        """The task submitted with ``state`` = ``tag``, from ``GET /mj/task/list``; given
        the ``task`` it was for, one still waiting in ``MODAL`` (the submit stopped before
        the modal was confirmed) is confirmed now.

        Neither proxy filters its task queries by ``state`` (``list-by-condition`` takes
        ids only), but both list recent tasks with their ``state``, newest first:
        novicezk's every task its store keeps, trueai-org's the latest 100. A task pushed
        out of that window by more than 100 newer ones on a trueai-org proxy is not found.
        """
        listed = await self._request("GET", "/mj/task/list")
        if not isinstance(listed, list):
            raise ProviderError("[Upstream unavailable] the midjourney-proxy's task list "
                                "is not a list", kind=FailureKind.UNAVAILABLE)
        found = [item for item in listed
                 if isinstance(item, Mapping) and item.get("state") == tag and item.get("id")]
        if not found:
            return None
        # the oldest, should a tag ever have started two tasks
        found.sort(key=lambda item: item["submitTime"]
                   if isinstance(item.get("submitTime"), int) else 0)
        task_id = str(found[0]["id"])
        if task is not None and found[0].get("status") == "MODAL":
            await self._confirm(task, task_id)
        return task_id

    # ------------------------------------------------------------------------------ poll

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        seeds = [i for i in upstream_ids if i.startswith(SEED_PREFIX)]
        tasks = [i for i in upstream_ids if not i.startswith(SEED_PREFIX)]
        answer: dict[str, ProviderUpdate] = {}
        for start in range(0, len(tasks), CHUNK):
            chunk = tasks[start:start + CHUNK]
            found = await self._request("POST", "/mj/task/list-by-condition", {"ids": chunk})
            if not isinstance(found, list):
                raise ProviderError("[Upstream unavailable] the midjourney-proxy's task list "
                                    "is not a list", kind=FailureKind.UNAVAILABLE)
            wanted = set(chunk)
            for item in found:
                if isinstance(item, Mapping) and str(item.get("id")) in wanted:
                    answer[str(item["id"])] = self._update(item, self._speaks(item))
        seed_updates = await asyncio.gather(*(self._seed(i) for i in seeds))
        answer.update({i: u for i, u in zip(seeds, seed_updates, strict=True) if u})
        return answer

    @staticmethod
    def _update(item: Mapping[str, Any], protocol: str) -> ProviderUpdate:
        status = item.get("status")
        if status in _RUNNING:
            return ProviderUpdate(TaskState.RUNNING, progress=_progress(item.get("progress")))
        if status == "SUCCESS":
            return _success(item, _actions(item, protocol))
        if status == "CANCEL":
            return ProviderUpdate(TaskState.FAILED,
                                  message="[Cancelled] the upstream cancelled the task")
        if status == "FAILURE":
            return _failed(str(item.get("failReason") or "the upstream task failed"))
        return ProviderUpdate(TaskState.RUNNING)  # a status this adapter does not know yet

    async def _seed(self, upstream_id: str) -> ProviderUpdate | None:
        parent = upstream_id.removeprefix(SEED_PREFIX)
        if self.protocol == "novicezk":
            reply: Any = NO_ROUTE
        else:
            reply = await self._request("GET", f"/mj/task/{parent}/image-seed",
                                        missing_ok=True)
        if reply is NO_ROUTE:  # novicezk's proxy has no image-seed route
            return ProviderUpdate(TaskState.FAILED, message=f"{UNSUPPORTED}this "
                                  "midjourney-proxy (novicezk) cannot tell a task's seed")
        if not isinstance(reply, Mapping) or reply.get("code") == 3:
            return None  # the upstream lost the parent
        code = reply.get("code")
        if code == 1 and reply.get("result") is not None:
            return ProviderUpdate(TaskState.SUCCESS, progress=100, seed=str(reply["result"]))
        return _failed(str(reply.get("description") or f"upstream code {code}"))

    # ----------------------------------------------------------------------------- probe

    async def probe(self) -> None:
        listed = await self._request("GET", "/mj/account/list")
        if not isinstance(listed, list):
            raise ProviderError("[Upstream unavailable] the midjourney-proxy's account list "
                                "is not a list", kind=FailureKind.UNAVAILABLE)
        instances = [i for i in listed if isinstance(i, Mapping)
                     and (not self.instance_id or str(i.get("id")) == self.instance_id)]
        if any(i.get("enable") and not i.get("lock") for i in instances):
            return
        if not instances:
            raise ProviderError("[Upstream unavailable] the midjourney-proxy lists no "
                                "instance for this account", kind=FailureKind.UNAVAILABLE)
        raise _instance_error(instances[0])

    async def cancel(self, upstream_id: str) -> None:
        """Best effort: a task that cannot be cancelled ends by itself."""
        if upstream_id.startswith(SEED_PREFIX) or self.protocol == "novicezk":
            return  # novicezk's proxy has no cancel route
        try:
            await self._request("POST", f"/mj/task/{upstream_id}/cancel", {})
        except ProviderError:
            return

    async def forget(self, upstream_id: str) -> None:
        """The proxy keeps its tasks by its own retention; nothing to drop."""

    async def close(self) -> None:
        """The HTTP client is shared and closed by its owner."""


#: a task's failReason blames the account only when it says so: free text such as "the
#: reference image link has expired" is about the job
_ACCOUNT_REASON = re.compile(
    r"\baccount\b|captcha|verify you|human verification|pending mod|moderation|"
    r"\btoken\b|unauthori[sz]ed|no available (account|instance)", re.IGNORECASE)


def _failed(reason: str) -> ProviderUpdate:
    """A task that ended without a result: the account's fault or the job's.

    Midjourney's own failures keep their bracketed title (novicezk stores
    ``"[" + title + "] " + description``, ErrorMessageHandler.java; trueai-org
    ``title + ", " + description``, DiscordWebSocketService.cs), so TTAPI clients that match
    it, and the illegal-prompt rule, see ``[Banned prompt detected] ...`` once, unprefixed.
    """
    kind = classify(reason) if _ACCOUNT_REASON.search(reason) else FailureKind.JOB
    if kind.account_level:
        return ProviderUpdate(TaskState.FAILED, message=f"{ACCOUNT_PREFIX}{reason}", kind=kind)
    return ProviderUpdate(TaskState.FAILED, message=_job_message(reason))


def _job_message(reason: str) -> str:
    text = reason.strip()
    if _BRACKETED.match(text):
        return text
    if _SENSITIVE in text:
        return f"[Banned prompt detected] {text}"
    for title in _PROMPT_TITLES:
        if text.startswith(title) and text[len(title):len(title) + 1] in (",", ":", ""):
            return f"[{title}] {text[len(title) + 1:].strip()}".rstrip()
    return f"[Upstream failed] {text}"


def _actions(item: Mapping[str, Any], protocol: str) -> list[str]:
    """The follow-up actions the account can run on a finished task: those of its buttons
    (trueai-org), or U1-U4, V1-V4 and reroll of a grid (novicezk's /change)."""
    if protocol == "novicezk":
        return list(CHANGES) if item.get("action") in _CHANGE_PARENTS else []
    ids = [str(b.get("customId", "")) for b in item.get("buttons") or []
           if isinstance(b, Mapping)]
    return [name for name, prefix in BUTTONS.items()
            if any(i.startswith(prefix) for i in ids)]


def _success(item: Mapping[str, Any], actions: list[str]) -> ProviderUpdate:
    prompt = item.get("prompt") or (item.get("properties") or {}).get("finalPrompt") or ""
    if item.get("action") == "DESCRIBE":
        prompts = tuple(_MARKER.sub("", part).strip() for part in str(prompt).split("\n\n")
                        if part.strip())
        return ProviderUpdate(TaskState.SUCCESS, progress=100, prompts=prompts)
    url = item.get("imageUrl")
    if not url:
        return ProviderUpdate(TaskState.FAILED,
                              message="[Upstream failed] the upstream finished without an image")
    return ProviderUpdate(TaskState.SUCCESS, progress=100, image_url=str(url),
                          data={"actions": actions})


def _instance_error(instance: Mapping[str, Any]) -> ProviderError:
    """Why an instance that is disabled or locked cannot take work."""
    reason = str(instance.get("disabledReason") or "")
    kind = classify(reason) if reason else FailureKind.UNAVAILABLE
    if instance.get("lock") and kind is not FailureKind.BANNED:
        kind = FailureKind.CAPTCHA
        reason = reason or "CAPTCHA verification required"
    if not kind.account_level:
        kind = FailureKind.UNAVAILABLE
    return _error(kind, reason or "the account's instance is disabled")
