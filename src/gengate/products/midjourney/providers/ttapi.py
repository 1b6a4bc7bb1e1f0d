"""An upstream that speaks TTAPI's own wire protocol: the hosted TTAPI service, or another
gengate, used with an operator's key.

TTAPI answers a job id at submit and is polled with ``GET /midjourney/v1/fetch``. It has no
bulk fetch, so :meth:`TtapiProvider.poll_many` asks about each task on its own, a few at a
time. Every failure becomes a :class:`ProviderError` whose kind says whether the job (a
banned prompt, a bad input) or the account (key, balance, queue, outage) is at fault, so the
worker can route the job elsewhere only when that can help.

The account's key travels in the ``TT-API-KEY`` header of each request and nowhere else:
not in the shared client, not in messages, logs or ``repr``.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import re
import time
from typing import Any

import httpx

from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)
from gengate.providers.ttapi_relay import failed

__all__ = ["TtapiProvider"]

log = logging.getLogger("gengate.products.midjourney.providers.ttapi")

V1 = "/midjourney/v1"
#: fetches in flight at once per account: polite to the upstream, still quick for many tasks
FETCH_CONCURRENCY = 8
EXHAUSTED = "[Upstream account] the upstream account's balance is exhausted"
REJECTED = "[Upstream account] the upstream rejected the account's key"
#: submit endpoints whose ``jobId`` names a parent task: a 404 there is the job's problem
_PARENTED = frozenset({"action", "seed", "inpaint"})
_NUMBERED = re.compile(r"^\s*\d\ufe0f?\u20e3\s*")


class TtapiProvider:
    """One TTAPI-compatible account: a base URL and its key."""

    name = "ttapi"
    #: the upstream keeps its own copy of a parent task; only the job's own inputs travel
    wants_parent_image = False
    #: TTAPI takes no caller-supplied id and lists no running tasks: a submit whose answer
    #: was lost cannot be found again
    finds_by_tag = False

    def __init__(self, base_url: str, *, api_key: str, http: httpx.AsyncClient,
                 poll_interval: float = 2.0, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval
        self._headers = {"TT-API-KEY": api_key}
        self._key = api_key
        self._http = http
        self._timeout = httpx.Timeout(timeout)
        self._fetches = asyncio.Semaphore(FETCH_CONCURRENCY)
        #: last progress seen per task, reported again when one fetch fails for a moment
        self._progress: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"TtapiProvider({self.base_url!r})"

    # -- submit ---------------------------------------------------------------------------

    async def submit(self, task: ProviderTask) -> str:
        endpoint, body = _request(task)
        payload = await self._call("POST", endpoint, json=body) or {}
        data = payload.get("data")
        job_id = (data.get("jobId") or data.get("job_id")) if isinstance(data, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise ProviderError("[Bad response] the upstream answered no jobId",
                                kind=FailureKind.UNAVAILABLE)
        return job_id

    # -- poll -----------------------------------------------------------------------------

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        """Fetch each task (bounded concurrency). A task the upstream does not know is left
        out. A fetch that fails for a moment reports the last progress seen, unless every
        fetch failed: then the upstream itself is down and the batch raises."""
        ids = list(dict.fromkeys(upstream_ids))
        if not ids:
            return {}
        answers = await asyncio.gather(*(self._fetch(i) for i in ids))
        out: dict[str, ProviderUpdate] = {}
        errors: list[ProviderError] = []
        for upstream_id, answer in zip(ids, answers, strict=True):
            if isinstance(answer, ProviderError):
                if answer.kind is FailureKind.UNAVAILABLE:
                    errors.append(answer)
                    out[upstream_id] = ProviderUpdate(
                        TaskState.RUNNING, progress=self._progress.get(upstream_id, 0))
                elif answer.kind.account_level:
                    raise answer  # the key or the account, not one task
                # else the upstream refuses this id: as good as unknown, so left out
            elif answer is not None:
                out[upstream_id] = answer
        if errors and len(errors) == len(ids):
            raise errors[0]
        return out

    async def _fetch(self, upstream_id: str) -> ProviderUpdate | ProviderError | None:
        """One task's state; None when the upstream does not know it."""
        async with self._fetches:
            try:
                body = await self._call("GET", "fetch", params={"jobId": upstream_id},
                                        missing_ok=True)
            except ProviderError as exc:
                return exc
        if body is None:
            self._progress.pop(upstream_id, None)
            return None
        update = _update(body)
        if update.state is TaskState.RUNNING:
            self._progress[upstream_id] = update.progress
        else:
            self._progress.pop(upstream_id, None)
        return update

    # -- account --------------------------------------------------------------------------

    async def probe(self) -> None:
        """The key works, there is balance left, and (where the upstream says) a free slot."""
        payload = await self._call("GET", "info") or {}
        data = payload.get("data")
        if not isinstance(data, dict):
            raise ProviderError("[Bad response] the upstream answered no account info",
                                kind=FailureKind.UNAVAILABLE)
        balance = _number(data.get("balance"))
        if balance is not None and balance <= 0:
            raise ProviderError(EXHAUSTED, kind=FailureKind.AUTH)
        busy, limit = _number(data.get("in_progress")), _number(data.get("max_queue"))
        if busy is not None and limit is not None and busy >= limit:
            raise ProviderError("[Upstream account] the upstream queue is full",
                                kind=FailureKind.QUEUE_FULL)

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        """TTAPI has nothing to find a task by but the id its answer carries."""
        return None

    async def cancel(self, upstream_id: str) -> None:
        """TTAPI cannot stop a task."""
        self._progress.pop(upstream_id, None)

    async def forget(self, upstream_id: str) -> None:
        """TTAPI keeps results on its own schedule; only local memory is dropped."""
        self._progress.pop(upstream_id, None)

    async def close(self) -> None:
        """The HTTP client is shared and belongs to the caller."""
        self._progress.clear()

    # -- HTTP -----------------------------------------------------------------------------

    async def _call(self, method: str, endpoint: str, *, json: Any = None,
                    params: dict[str, str] | None = None,
                    missing_ok: bool = False) -> dict[str, Any] | None:
        """One request; the envelope on success, None on a 404 where ``missing_ok``."""
        url = f"{self.base_url}{V1}/{endpoint}"
        try:
            response = await self._http.request(method, url, json=json, params=params,
                                                headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            # a request that left may have started a task the answer never told us about
            sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout,
                                        httpx.PoolTimeout))
            raise ProviderError(self._scrub(f"[Upstream unavailable] {detail}"),
                                kind=FailureKind.UNAVAILABLE,
                                uncertain=sent and method == "POST") from None
        if response.status_code == 404 and missing_ok:
            return None
        payload = _envelope(response)
        if response.status_code == 200 and payload is not None:
            if payload.get("status") != "FAILED" or endpoint == "fetch":
                return payload
        error = _failure(response, payload, endpoint)
        error = ProviderError(self._scrub(str(error)), kind=error.kind,
                              retry_after=error.retry_after)
        log.info("event=ttapi_failed endpoint=%s status=%s kind=%s", endpoint,
                 response.status_code, error.kind.value)
        raise error

    def _scrub(self, text: str) -> str:
        """Messages are public: the key must not ride along even if an upstream echoes it."""
        return text.replace(self._key, "***") if self._key else text


# -- requests -------------------------------------------------------------------------------


def _request(task: ProviderTask) -> tuple[str, dict[str, Any]]:
    """The endpoint and body for a task, in TTAPI's field names, with the job's
    ``timeout`` (else TTAPI applies its own 300/600 s)."""
    endpoint, body = _body(task)
    timeout = _timeout(task)
    if timeout is not None:
        body["timeout"] = timeout
    return endpoint, body


def _body(task: ProviderTask) -> tuple[str, dict[str, Any]]:
    action = task.action
    if action == "imagine":
        return "imagine", {"prompt": _slot_flag(task.prompt, task.mode), "mode": task.mode}
    if action == "blend":
        return "blend", {"imgBase64Array": [_data_url(i) for i in task.images],
                         "dimensions": _dimensions(task.aspect), "mode": task.mode}
    if action == "describe":
        return "describe", {"base64": _data_url(_first(task)), "mode": task.mode}
    parent = task.parent_upstream_id
    if not parent:
        raise ProviderError(f"[Invalid parameter] {action} needs the parent task upstream")
    if action == "seed":
        return "seed", {"jobId": parent}
    if action == "inpaint":
        body = {"jobId": parent, "mask": base64.b64encode(_first(task)).decode("ascii")}
        if task.prompt:
            body["prompt"] = _slot_flag(task.prompt, task.mode)
        return "inpaint", body
    return "action", {"jobId": parent, "action": action}


_MODE_FLAG = re.compile(r"(?:^|\s)--(?:fast|relax|turbo)(?=\s|$)", re.IGNORECASE)


def _slot_flag(prompt: str, mode: str) -> str:
    """The prompt with its speed flag, if it has one, naming the slot's mode: Midjourney
    takes the mode from the prompt before the ``mode`` field, so a job placed in a relax
    slot that says ``--fast`` would run, and be billed, as fast upstream."""
    if not mode or not _MODE_FLAG.search(prompt):
        return prompt
    return f"{_MODE_FLAG.sub('', prompt).strip()} --{mode}"


def _timeout(task: ProviderTask) -> int | None:
    """The job's timeout within TTAPI's range for the slot's mode (300-1200 s, relax at
    least 600)."""
    value = task.params.get("timeout")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    low = 600 if task.mode == "relax" else 300
    return int(min(1200, max(low, value)))


def _first(task: ProviderTask) -> bytes:
    if not task.images:
        raise ProviderError(f"[Invalid parameter] {task.action} needs an image")
    return task.images[0]


def _data_url(image: bytes) -> str:
    """TTAPI documents a ``data:image/...;base64,`` prefix for blend and describe images
    (gengate takes either form)."""
    return f"data:{_media_type(image)};base64,{base64.b64encode(image).decode('ascii')}"


def _media_type(image: bytes) -> str:
    if image.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp"
    if image[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "image/png"


def _dimensions(aspect: tuple[int, int]) -> str:
    width, height = aspect
    if width == height:
        return "SQUARE"
    return "LANDSCAPE" if width > height else "PORTRAIT"


# -- answers --------------------------------------------------------------------------------


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object of an answer, or None when it is not one."""
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


#: fixed answers to statuses that say the account, not the job, is at fault
_ACCOUNT_FAILURES: dict[int, tuple[str, FailureKind]] = {
    401: (REJECTED, FailureKind.AUTH),
    # an operator must top the upstream account up: AUTH puts it under attention
    402: (EXHAUSTED, FailureKind.AUTH),
    403: ("[Upstream account] the upstream blocked the account", FailureKind.BANNED),
    429: ("[Upstream account] the upstream is rate limiting the account",
          FailureKind.RATE_LIMITED),
    499: ("[Upstream account] the upstream queue is full (max_queue)", FailureKind.QUEUE_FULL),
}


def _failure(response: httpx.Response, payload: dict[str, Any] | None,
             endpoint: str) -> ProviderError:
    """The ProviderError for a refused or broken request."""
    status = response.status_code
    message = payload.get("message") if payload else None
    upstream = message if isinstance(message, str) and message else ""
    if status in _ACCOUNT_FAILURES:
        text, kind = _ACCOUNT_FAILURES[status]
        retry_after = _retry_after(response.headers.get("retry-after")) if status == 429 else None
        return ProviderError(text, kind=kind, retry_after=retry_after)
    if payload is None or status >= 500 or (status != 200 and status < 400):
        return ProviderError(f"[Upstream unavailable] HTTP {status}: {upstream or 'no answer'}",
                             kind=FailureKind.UNAVAILABLE)
    if status == 404 and endpoint not in _PARENTED:
        return ProviderError(f"[Upstream unavailable] {endpoint} not found upstream: "
                             "check the account's base URL", kind=FailureKind.UNAVAILABLE)
    if "No available accounts" in upstream:
        # TTAPI hosting: none of the user's Midjourney accounts can take the mode now
        return ProviderError(f"[Upstream account] {upstream}", kind=FailureKind.QUEUE_FULL)
    # 400 and the like (or a 200 whose envelope says FAILED): the prompt or an input
    return ProviderError(upstream or f"[Invalid parameter] the upstream refused it (HTTP {status})")


def _update(body: dict[str, Any]) -> ProviderUpdate:
    """A fetch body as gengate's own view of the task."""
    data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
    status = body.get("status")
    if status == "FAILED":
        return failed(body)
    if status != "SUCCESS":
        return ProviderUpdate(TaskState.RUNNING, progress=min(99, _progress(data.get("progress"))))
    action = str(data.get("action") or "")
    if action == "describe":
        return ProviderUpdate(TaskState.SUCCESS, progress=100, prompts=_prompts(data))
    if action == "seed":
        seed = data.get("seed")
        return ProviderUpdate(TaskState.SUCCESS, progress=100,
                              seed=None if seed is None else str(seed))
    url = data.get("cdnImage") or data.get("discordImage")
    if not isinstance(url, str) or not url:
        return ProviderUpdate(TaskState.FAILED,
                              message="[Bad response] the upstream finished without an image")
    return ProviderUpdate(TaskState.SUCCESS, progress=100, image_url=url)


def _progress(value: Any) -> int:
    """``"50"``, ``"50%"``, ``50`` or null, as a percentage."""
    if isinstance(value, str):
        value = value.strip().rstrip("%")
    try:
        return max(0, min(100, int(float(value))))
    except (TypeError, ValueError):
        return 0


def _prompts(data: dict[str, Any]) -> tuple[str, ...]:
    """Describe's prompts: gengate also sends them as a list; TTAPI numbers them in one
    ``prompt`` text (``1️⃣ ...``), separated by blank lines."""
    listed = data.get("prompts")
    if isinstance(listed, list) and listed:
        return tuple(str(p) for p in listed)
    text = data.get("prompt")
    if not isinstance(text, str):
        return ()
    parts = (_NUMBERED.sub("", part).strip() for part in re.split(r"\n\s*\n", text))
    return tuple(p for p in parts if p)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from ``Retry-After`` (delta seconds or an HTTP date)."""
    if not value:
        return None
    seconds = _number(value.strip())
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
