"""The ``midjourney_proxy`` upstream: one account of a midjourney-proxy server.

Speaks the REST protocol of novicezk's midjourney-proxy with trueai-org's additions:
``/mj/submit/imagine|blend|describe`` start work, follow-up actions press one of the parent
task's ``buttons`` through ``/mj/submit/action`` (buttons that need more input, such as
Vary (Region), answer code 21 with a task in ``MODAL`` that ``/mj/submit/modal`` confirms),
and ``/mj/task/list-by-condition`` polls every running task of the account in one request.
The seed of a finished task comes from ``/mj/task/{id}/image-seed``; a ``seed`` job has no
upstream task of its own, so its id is ``seed:<parent id>``.

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

__all__ = ["ACCOUNT_PREFIX", "BUTTONS", "MidjourneyProxyProvider", "classify", "failure_kind",
           "with_mode"]

#: messages of account-level task failures start with this (see the module's docstring)
ACCOUNT_PREFIX = "[Upstream account] "
#: a seed job's id is this prefix and the parent's upstream id (no upstream task of its own)
SEED_PREFIX = "seed:"
#: the most ids in one list-by-condition request
CHUNK = 100

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
                 timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.instance_id = instance_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._http = http
        self._headers = {"mj-api-secret": secret} if secret else {}

    def __repr__(self) -> str:
        return (f"MidjourneyProxyProvider({self.base_url!r}, "
                f"instance_id={self.instance_id!r})")

    # ------------------------------------------------------------------------ transport

    async def _request(self, method: str, path: str, body: Any = None, *,
                       missing_ok: bool = False) -> Any:
        """The upstream's JSON answer (``None`` for a 404 when ``missing_ok``); every
        transport or HTTP failure becomes a :class:`ProviderError` of the right kind.

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
            return None
        self._check_status(status, response)
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
        raise self._refusal(code, str(reply.get("description") or ""),
                            reply.get("properties") or {})

    @staticmethod
    def _refusal(code: Any, description: str, properties: Mapping[str, Any]) -> ProviderError:
        if code == 23:
            return ProviderError(f"[Upstream busy] {description or 'the queue is full'}",
                                 kind=FailureKind.QUEUE_FULL)
        if code == 24:
            word = properties.get("bannedWord") if isinstance(properties, Mapping) else None
            detail = f"`{word}` is not allowed" if word else description or "banned prompt"
            return ProviderError(f"[Banned prompt detected] {detail}", kind=FailureKind.JOB)
        if code == 4:
            return ProviderError(f"[Invalid parameter] {description or 'validation failed'}",
                                 kind=FailureKind.JOB)
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
        """A follow-up action: press the parent's button for it, then confirm the modal
        when the upstream waits for one."""
        prefix = BUTTONS.get(task.action)
        if prefix is None:
            raise ProviderError(f"[Invalid parameter] the midjourney-proxy cannot run "
                                f"{task.action}")
        if task.action == "inpaint" and not task.images:
            raise ProviderError("[Invalid parameter] inpaint needs a mask")
        parent_id = self._parent(task)
        parent = await self._request("GET", f"/mj/task/{parent_id}/fetch", missing_ok=True)
        if not isinstance(parent, Mapping):
            raise ProviderError("[Upstream failed] the upstream no longer knows the parent "
                                "task", kind=FailureKind.JOB)
        custom_id = next((str(b["customId"]) for b in parent.get("buttons") or []
                          if isinstance(b, Mapping)
                          and str(b.get("customId", "")).startswith(prefix)), None)
        if custom_id is None:
            raise ProviderError(f"[Invalid parameter] the upstream task has no button for "
                                f"{task.action}", kind=FailureKind.JOB)
        reply = await self._submit("/mj/submit/action",
                                   {"taskId": parent_id, "customId": custom_id}, task.mode,
                                   task.tag)
        task_id = str(reply["result"])
        if reply["code"] == 21 and await self._is_modal(reply, task_id):
            await self._confirm(task, task_id)
        return task_id

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
                    answer[str(item["id"])] = self._update(item)
        seed_updates = await asyncio.gather(*(self._seed(i) for i in seeds))
        answer.update({i: u for i, u in zip(seeds, seed_updates, strict=True) if u})
        return answer

    @staticmethod
    def _update(item: Mapping[str, Any]) -> ProviderUpdate:
        status = item.get("status")
        if status in _RUNNING:
            return ProviderUpdate(TaskState.RUNNING, progress=_progress(item.get("progress")))
        if status == "SUCCESS":
            return _success(item)
        if status == "CANCEL":
            return ProviderUpdate(TaskState.FAILED,
                                  message="[Cancelled] the upstream cancelled the task")
        if status == "FAILURE":
            return _failed(str(item.get("failReason") or "the upstream task failed"))
        return ProviderUpdate(TaskState.RUNNING)  # a status this adapter does not know yet

    async def _seed(self, upstream_id: str) -> ProviderUpdate | None:
        parent = upstream_id.removeprefix(SEED_PREFIX)
        reply = await self._request("GET", f"/mj/task/{parent}/image-seed", missing_ok=True)
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
        if upstream_id.startswith(SEED_PREFIX):
            return
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
    """A task that ended without a result: the account's fault or the job's."""
    kind = classify(reason) if _ACCOUNT_REASON.search(reason) else FailureKind.JOB
    if kind.account_level:
        return ProviderUpdate(TaskState.FAILED, message=f"{ACCOUNT_PREFIX}{reason}", kind=kind)
    return ProviderUpdate(TaskState.FAILED, message=f"[Upstream failed] {reason}")


def _success(item: Mapping[str, Any]) -> ProviderUpdate:
    prompt = item.get("prompt") or (item.get("properties") or {}).get("finalPrompt") or ""
    if item.get("action") == "DESCRIBE":
        prompts = tuple(_MARKER.sub("", part).strip() for part in str(prompt).split("\n\n")
                        if part.strip())
        return ProviderUpdate(TaskState.SUCCESS, progress=100, prompts=prompts)
    url = item.get("imageUrl")
    if not url:
        return ProviderUpdate(TaskState.FAILED,
                              message="[Upstream failed] the upstream finished without an image")
    return ProviderUpdate(TaskState.SUCCESS, progress=100, image_url=str(url))


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
