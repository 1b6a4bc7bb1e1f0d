"""Black Forest Labs' own API (api.bfl.ai) as an upstream of the Flux product.

A task is submitted to ``POST /v1/<model>`` with the account's key in ``x-key``; BFL answers
an ``id`` and a ``polling_url`` (which may point at a regional host), and the task is polled
there until its status is final. ``Ready`` carries ``result.sample``, a signed URL valid for
minutes, which the engine downloads at once. ``Request Moderated`` and ``Content Moderated``
fail the job with the reason; ``Error`` fails it with BFL's details; ``Task not found`` is a
lost task. The polling URL is the upstream task id, so a worker that takes the job over
resumes polling where the first one stopped.

Flux's modes map onto BFL's endpoints (:data:`ENDPOINTS`); each endpoint takes the size its
reference page documents: Kontext an ``aspect_ratio`` between 21:9 and 9:21, FLUX.1 and
FLUX1.1 ``width``/``height`` in multiples of 32 from 256 to 1440, FLUX.2 ``width``/
``height`` in multiples of 16. A size an endpoint cannot make is brought to the nearest one
it can, keeping the shape.
"""

from __future__ import annotations

import asyncio
import base64
import math
from typing import Any
from urllib.parse import urlsplit

import httpx

from gengate.imaging.picture import parse_ratio, ratio_of
from gengate.products.base import AdapterContext, ResultFile
from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)
from gengate.providers.upstream_http import (
    PollAnswer,
    json_object,
    poll_each,
    retry_after,
    scrub,
    transport_error,
)

__all__ = ["ENDPOINTS", "BflProvider", "bfl_adapter"]

#: Flux mode -> (BFL endpoint, how it is sized, how many input images it takes)
ENDPOINTS: dict[str, tuple[str, str, int]] = {
    "flux1-dev": ("flux-dev", "wh32", 1),
    "flux1-pro": ("flux-pro-1.1", "wh32", 1),
    "flux-kontext-pro": ("flux-kontext-pro", "ratio", 4),
    "flux-kontext-max": ("flux-kontext-max", "ratio", 4),
    "flux-2-pro": ("flux-2-pro", "wh16", 8),
    "flux-2-flex": ("flux-2-flex", "wh16", 8),
    "flux-2-max": ("flux-2-max", "wh16", 8),
    "flux-2-klein-4b": ("flux-2-klein-4b", "wh16", 4),
    "flux-2-klein-9b": ("flux-2-klein-9b", "wh16", 4),
}
FETCH_CONCURRENCY = 8
_MODERATED = {
    "Request Moderated": "[Request Moderated] the upstream's moderation refused the prompt "
                         "or an input image",
    "Content Moderated": "[Content Moderated] the upstream's moderation withheld the "
                         "generated image",
}
_ACCOUNT_FAILURES: dict[int, tuple[str, FailureKind]] = {
    401: ("[Upstream account] the upstream rejected the account's key", FailureKind.AUTH),
    403: ("[Upstream account] the upstream rejected the account's key", FailureKind.AUTH),
    402: ("[Upstream account] the upstream account has no credits left", FailureKind.AUTH),
    429: ("[Upstream account] the account has as many tasks running as the upstream allows",
          FailureKind.QUEUE_FULL),
}


def bfl_adapter(ctx: AdapterContext) -> BflProvider:
    """The factory the Flux product registers for accounts of kind ``bfl``."""
    return BflProvider(ctx.base_url or "https://api.bfl.ai", api_key=ctx.secrets.get("apiKey", ""),
                       http=ctx.http, poll_interval=ctx.poll_interval)


class BflProvider:
    """One BFL account: a base URL and its key."""

    name = "bfl"
    wants_parent_image = False
    supports_cancel = False  #: BFL has no way to stop a task
    #: BFL keeps no caller-supplied value on a task
    finds_by_tag = False

    def __init__(self, base_url: str, *, api_key: str, http: httpx.AsyncClient,
                 poll_interval: float = 1.0, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval
        self._key = api_key
        self._headers = {"x-key": api_key}
        self._http = http
        self._timeout = httpx.Timeout(timeout)
        self._fetches = asyncio.Semaphore(FETCH_CONCURRENCY)
        self._progress: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"BflProvider({self.base_url!r})"

    # -- submit ---------------------------------------------------------------------------

    async def submit(self, task: ProviderTask) -> str:
        endpoint, body = request_body(task)
        response = await self._request("POST", f"{self.base_url}/v1/{endpoint}", json=body)
        payload = json_object(response)
        if response.status_code != 200 or payload is None:
            raise self._failure(response, payload)
        task_id, polling_url = payload.get("id"), payload.get("polling_url")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("[Bad response] the upstream answered no task id",
                                kind=FailureKind.UNAVAILABLE)
        if isinstance(polling_url, str) and self._trusted(polling_url) and len(polling_url) <= 128:
            return polling_url
        return f"{self.base_url}/v1/get_result?id={task_id}"

    def _trusted(self, url: str) -> bool:
        """The key only travels to the account's own host or a sibling of it
        (``api.bfl.ai`` answers polling URLs on ``api.us1.bfl.ai``)."""
        base, other = urlsplit(self.base_url), urlsplit(url)
        if other.scheme != base.scheme or not other.hostname or not base.hostname:
            return False
        if other.netloc == base.netloc:
            return True
        parent = base.hostname.split(".")[-2:]
        return (len(parent) == 2 and not base.hostname.replace(".", "").isdigit()
                and other.hostname.split(".")[-2:] == parent and other.port == base.port)

    # -- poll -----------------------------------------------------------------------------

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        """Never called (:attr:`finds_by_tag` is false): nothing to look up."""
        return None

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        return await poll_each(upstream_ids, self._poll, running=lambda upstream_id:
                               ProviderUpdate(TaskState.RUNNING,
                                              progress=self._progress.get(upstream_id, 0)))

    async def _poll(self, upstream_id: str) -> PollAnswer:
        url = upstream_id if upstream_id.startswith(("http://", "https://")) else (
            f"{self.base_url}/v1/get_result?id={upstream_id}")
        if not self._trusted(url):
            return None  # not a task of this account
        async with self._fetches:
            try:
                response = await self._request("GET", url)
            except ProviderError as exc:
                return exc
        payload = json_object(response)
        if response.status_code == 404:
            return None
        if response.status_code != 200 or payload is None:
            return self._failure(response, payload)
        update = read_result(payload)
        if update is None or update.state is not TaskState.RUNNING:
            self._progress.pop(upstream_id, None)
        else:
            self._progress[upstream_id] = update.progress
        return update

    # -- account --------------------------------------------------------------------------

    async def probe(self) -> None:
        """BFL has no account endpoint that costs nothing; a poll of an unknown task
        shows whether the key is taken (``Task not found``) or refused (403)."""
        response = await self._request(
            "GET", f"{self.base_url}/v1/get_result?id=00000000-0000-0000-0000-000000000000")
        if response.status_code != 200:
            raise self._failure(response, json_object(response))

    async def cancel(self, upstream_id: str) -> None:
        self._progress.pop(upstream_id, None)

    async def forget(self, upstream_id: str) -> None:
        self._progress.pop(upstream_id, None)

    async def close(self) -> None:
        self._progress.clear()

    # -- HTTP -----------------------------------------------------------------------------

    async def _request(self, method: str, url: str, *, json: Any = None) -> httpx.Response:
        try:
            return await self._http.request(method, url, json=json, headers=self._headers,
                                            timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._key, submit=method == "POST") from None

    def _failure(self, response: httpx.Response, payload: dict[str, Any] | None) -> ProviderError:
        status = response.status_code
        if status in _ACCOUNT_FAILURES:
            text, kind = _ACCOUNT_FAILURES[status]
            return ProviderError(text, kind=kind,
                                 retry_after=retry_after(response.headers.get("retry-after")))
        detail = _detail(payload)
        if status in (400, 422) and payload is not None:
            return ProviderError(scrub(f"[Invalid parameter] the upstream refused the task: "
                                       f"{detail}", self._key))
        return ProviderError(scrub(f"[Upstream unavailable] HTTP {status}: {detail}", self._key),
                             kind=FailureKind.UNAVAILABLE)


# -- requests -------------------------------------------------------------------------------


def request_body(task: ProviderTask) -> tuple[str, dict[str, Any]]:
    """The endpoint and body of a Flux task, in BFL's field names."""
    options = task.options
    mode = str(options.get("model") or "")
    if mode not in ENDPOINTS:
        raise ProviderError(f"[Invalid parameter] Black Forest Labs does not serve {mode}")
    endpoint, sizing, most = ENDPOINTS[mode]
    width, height = int(options.get("width") or 1024), int(options.get("height") or 1024)
    body: dict[str, Any] = {"prompt": task.prompt}
    if sizing == "ratio":
        given = parse_ratio(str(options.get("aspect_ratio") or ""))
        a, b = given or ratio_of((width, height))
        ratio = max(9 / 21, min(21 / 9, a / b))
        body["aspect_ratio"] = f"{a}:{b}" if ratio == a / b else (
            "21:9" if ratio > 1 else "9:21")
    elif sizing == "wh32":
        body["width"], body["height"] = _fit(width, height, 32, 256, 1440)
    else:
        body["width"], body["height"] = _fit(width, height, 16, 64, 2048)
    if len(task.images) > most:
        raise ProviderError(f"[Invalid parameter] {mode} takes at most {most} input images "
                            "on Black Forest Labs")
    for index, data in enumerate(task.images):
        name = ("image_prompt" if sizing == "wh32" else
                "input_image" if index == 0 else f"input_image_{index + 1}")
        body[name] = base64.b64encode(data).decode("ascii")
    for name in ("seed", "output_format", "prompt_upsampling", "safety_tolerance"):
        if options.get(name) is not None:
            body[name] = options[name]
    return endpoint, body


def _fit(width: int, height: int, multiple: int, low: int, high: int) -> tuple[int, int]:
    """The nearest size within [low, high] on both sides, in multiples, keeping the shape."""
    shrink = min(1.0, high / max(width, height))
    grow = max(1.0, low / min(width, height))
    factor = shrink if shrink < 1.0 else grow
    fit = [min(high, max(low, multiple * round(side * factor / multiple)))
           for side in (width, height)]
    return fit[0], fit[1]


# -- answers --------------------------------------------------------------------------------


def read_result(payload: dict[str, Any]) -> ProviderUpdate | None:
    """A ``get_result`` answer as gengate's view of the task; None when BFL no longer
    knows it."""
    status = payload.get("status")
    if status == "Ready":
        result = payload.get("result")
        sample = result.get("sample") if isinstance(result, dict) else None
        if not isinstance(sample, str) or not sample.startswith(("http://", "https://")):
            return ProviderUpdate(TaskState.FAILED,
                                  message="[Bad response] the upstream finished without an image")
        path = urlsplit(sample).path.lower()
        content_type = "image/jpeg" if path.endswith((".jpg", ".jpeg")) else (
            "image/webp" if path.endswith(".webp") else "image/png")
        data: dict[str, Any] = {}
        if isinstance(result, dict) and isinstance(result.get("seed"), int):
            data["seed"] = result["seed"]
        return ProviderUpdate(TaskState.SUCCESS, progress=100, data=data,
                              files=(ResultFile("image", url=sample, content_type=content_type),))
    if status in _MODERATED:
        reasons = _reasons(payload.get("details"))
        return ProviderUpdate(TaskState.FAILED,
                              message=_MODERATED[str(status)] + (f": {reasons}" if reasons else ""))
    if status == "Error":
        reasons = _reasons(payload.get("details"))
        return ProviderUpdate(TaskState.FAILED, message="[Upstream error] the upstream could "
                              "not make the image" + (f": {reasons}" if reasons else ""))
    if status == "Task not found":
        return None
    return ProviderUpdate(TaskState.RUNNING, progress=_progress(payload.get("progress")))


def _progress(value: Any) -> int:
    """BFL's progress is a number or null; a fraction (0..1) or a percentage."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return 0
    percent = value * 100 if value <= 1 else value
    return max(0, min(99, int(percent)))


def _reasons(details: Any) -> str:
    """The moderation reasons or error text of ``details``, as one short line."""
    if isinstance(details, dict):
        parts: list[str] = []
        for value in details.values():
            if isinstance(value, list):
                parts.extend(str(v) for v in value)
            elif value is not None:
                parts.append(str(value))
        return "; ".join(parts)[:300]
    return str(details)[:300] if details else ""


def _detail(payload: dict[str, Any] | None) -> str:
    """FastAPI's ``detail``: a message, or a list of field errors."""
    if payload is None:
        return "no answer"
    detail = payload.get("detail")
    if isinstance(detail, list):
        parts: list[str] = []
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc[1:]) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return "; ".join(parts)[:300] or "invalid request"
    return str(detail)[:300] if detail else "no detail"
