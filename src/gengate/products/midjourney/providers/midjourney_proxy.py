"""The ``midjourney_proxy`` upstream: one account of a midjourney-proxy server.

Speaks both projects of that name, told apart per account (``protocol``: ``auto``, the
default, ``trueai`` or ``novicezk``); what differs between them is
:mod:`~gengate.products.midjourney.providers.proxy_forks`. Both start work with
``/mj/submit/imagine|blend|describe`` and poll every running task of the account in one
request (``/mj/task/list-by-condition``). A ``seed`` job has no upstream task of its own, so
its id is ``seed:<parent id>``. A finished task's update names the follow-up actions the
account can run on it (``data["actions"]``), so that no other is offered or charged.

Every failure becomes a :class:`ProviderError` or a ``FAILED`` update whose message starts
with a bracketed class and whose :class:`FailureKind` tells routing whether the job or the
account is at fault; :mod:`~gengate.products.midjourney.providers.proxy_answers` reads the
answers so (an account-level task failure's message starts with ``[Upstream account] ``).

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
from gengate.products.midjourney.providers.proxy_answers import (
    ACCOUNT_PREFIX,
    classify,
    failed,
    failure_kind,
    instance_error,
    refusal,
    task_update,
)
from gengate.products.midjourney.providers.proxy_forks import (
    BUTTONS,
    PROTOCOLS,
    UNSUPPORTED,
    button_for,
    change_body,
    speaks,
)
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate, TaskState

__all__ = ["ACCOUNT_PREFIX", "BUTTONS", "PROTOCOLS", "UNSUPPORTED", "MidjourneyProxyProvider",
           "classify", "failure_kind", "with_mode"]

#: a seed job's id is this prefix and the parent's upstream id (no upstream task of its own)
SEED_PREFIX = "seed:"
#: the most ids in one list-by-condition request, and such requests sent at once
CHUNK = 100
CHUNKS_AT_ONCE = 4
#: what ``_request`` answers, with ``missing_ok``, for a route the proxy does not have
NO_ROUTE: Any = object()
#: transport failures that happen before a request leaves: the upstream never saw it
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
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


class MidjourneyProxyProvider:
    """One midjourney-proxy account, reached at ``base_url`` with its ``mj-api-secret``.

    ``instance_id`` pins submits to one of the proxy's Discord instances (``accountFilter``);
    the ``http`` client is shared and belongs to the caller. ``notify_url`` goes with every
    submit that starts a task as its ``notifyHook`` (both proxies' BaseSubmitDTO; on
    trueai-org's, a modal's task keeps the hook of the action that opened it).
    """

    name = "midjourney_proxy"
    wants_parent_image = False
    finds_by_tag = True

    def __init__(self, base_url: str, *, http: httpx.AsyncClient, secret: str | None = None,
                 instance_id: str | None = None, poll_interval: float = 2.0,
                 timeout: float = 30.0, protocol: str | None = None,
                 notify_url: str | None = None):
        if (protocol or "auto") not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
        self.base_url = base_url.rstrip("/")
        self.protocol = protocol or "auto"
        self.instance_id = instance_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.notify_url = notify_url
        self._http = http
        self._headers = {"mj-api-secret": secret} if secret else {}

    def __repr__(self) -> str:
        return (f"MidjourneyProxyProvider({self.base_url!r}, "
                f"instance_id={self.instance_id!r}, protocol={self.protocol!r})")

    def _speaks(self, task: Mapping[str, Any]) -> str:
        return speaks(self.protocol, task)

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
        if self.notify_url:
            body["notifyHook"] = self.notify_url
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
        error = refusal(code, str(reply.get("description") or ""),
                        reply.get("properties") or {})
        if code == 3:
            try:
                await self.probe()
            except ProviderError as exc:
                if exc.kind.account_level:
                    return exc
        return error

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
        custom_id = button_for(task.action, parent)
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
        body = change_body(task.action, parent_id, parent)
        if body is None:
            raise ProviderError(f"{UNSUPPORTED}this midjourney-proxy (novicezk) cannot run "
                                f"{task.action} on this task", kind=FailureKind.JOB)
        if task.tag:
            body["state"] = task.tag
        if self.notify_url:
            body["notifyHook"] = self.notify_url
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
        gate = asyncio.Semaphore(CHUNKS_AT_ONCE)

        async def one(chunk: list[str]) -> None:
            async with gate:
                found = await self._request("POST", "/mj/task/list-by-condition",
                                            {"ids": chunk})
            if not isinstance(found, list):
                raise ProviderError("[Upstream unavailable] the midjourney-proxy's task list "
                                    "is not a list", kind=FailureKind.UNAVAILABLE)
            wanted = set(chunk)
            for item in found:
                if isinstance(item, Mapping) and str(item.get("id")) in wanted:
                    answer[str(item["id"])] = task_update(item, self._speaks(item))

        await asyncio.gather(*(one(tasks[start:start + CHUNK])
                               for start in range(0, len(tasks), CHUNK)))
        seed_updates = await asyncio.gather(*(self._seed(i) for i in seeds))
        answer.update({i: u for i, u in zip(seeds, seed_updates, strict=True) if u})
        return answer

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
        return failed(str(reply.get("description") or f"upstream code {code}"))

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
        raise instance_error(instances[0])

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
