"""A TTAPI-compatible upstream (the hosted TTAPI service, or another gengate) relaying a
product other than Midjourney: Flux, GPT image, Suno.

Each such product answers a job id at submit and is polled at its own fetch path with
``jobId``; the product says which path a task goes to and how (:class:`RelayRoute`), and
how its fetch body is read (default: one ``imageUrl``; Suno reads its songs). Failures
become :class:`ProviderError` whose kind says whether the job or the account is at fault,
as for Midjourney's TTAPI adapter.
The key travels only in the ``TT-API-KEY`` header.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gengate.products.base import ResultFile
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

__all__ = ["RelayRequest", "TtapiRelayProvider", "failed", "read_fetch"]

FETCH_CONCURRENCY = 8
_ACCOUNT_FAILURES: dict[int, tuple[str, FailureKind]] = {
    401: ("[Upstream account] the upstream rejected the account's key", FailureKind.AUTH),
    402: ("[Upstream account] the upstream account's balance is exhausted", FailureKind.AUTH),
    403: ("[Upstream account] the upstream blocked the account", FailureKind.BANNED),
    429: ("[Upstream account] the upstream is rate limiting the account",
          FailureKind.RATE_LIMITED),
    499: ("[Upstream account] the upstream queue is full (max_queue)", FailureKind.QUEUE_FULL),
}


@dataclass(frozen=True, slots=True)
class RelayRequest:
    """One submit: a path and either a JSON body or multipart fields and files."""

    path: str
    json: dict[str, Any] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, tuple[str, bytes, str]]] = field(default_factory=list)


class TtapiRelayProvider:
    """One TTAPI-compatible account serving one product."""

    name = "ttapi"
    wants_parent_image = False
    supports_cancel = False
    #: TTAPI's Flux and GPT image routes keep no caller-supplied value on a task
    finds_by_tag = False

    def __init__(self, base_url: str, *, api_key: str, http: httpx.AsyncClient,
                 build: Callable[[ProviderTask], RelayRequest], fetch_path: str,
                 poll_interval: float = 2.0, timeout: float = 30.0,
                 read: Callable[[dict[str, Any]], ProviderUpdate] | None = None):
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval
        self._build, self._fetch_path = build, fetch_path
        self._read = read or read_fetch
        self._key = api_key
        self._headers = {"TT-API-KEY": api_key}
        self._http = http
        self._timeout = httpx.Timeout(timeout)
        self._fetches = asyncio.Semaphore(FETCH_CONCURRENCY)

    def __repr__(self) -> str:
        return f"TtapiRelayProvider({self.base_url!r}, {self._fetch_path!r})"

    async def submit(self, task: ProviderTask) -> str:
        request = self._build(task)
        url = f"{self.base_url}{request.path}"
        try:
            if request.files:
                response = await self._http.post(url, data=request.fields, files=request.files,
                                                 headers=self._headers, timeout=self._timeout)
            else:
                response = await self._http.post(url, json=request.json, headers=self._headers,
                                                 timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._key, submit=True) from None
        payload = json_object(response)
        if response.status_code != 200 or payload is None or payload.get("status") == "FAILED":
            raise self._failure(response, payload)
        data = payload.get("data")
        job_id = (data.get("jobId") or data.get("job_id")) if isinstance(data, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise ProviderError("[Bad response] the upstream answered no jobId",
                                kind=FailureKind.UNAVAILABLE)
        return job_id

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        """Never called (:attr:`finds_by_tag` is false): nothing to look up."""
        return None

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        return await poll_each(upstream_ids, self._fetch)

    async def _fetch(self, upstream_id: str) -> PollAnswer:
        async with self._fetches:
            try:
                response = await self._http.get(f"{self.base_url}{self._fetch_path}",
                                                params={"jobId": upstream_id},
                                                headers=self._headers, timeout=self._timeout)
            except httpx.HTTPError as exc:
                return transport_error(exc, self._key)
        if response.status_code == 404:
            return None
        payload = json_object(response)
        if response.status_code != 200 or payload is None:
            return self._failure(response, payload)
        return self._read(payload)

    async def probe(self) -> None:
        """The key works and there is balance left (``/midjourney/v1/info`` is TTAPI's one
        account endpoint; it answers for every product)."""
        try:
            response = await self._http.get(f"{self.base_url}/midjourney/v1/info",
                                            headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._key) from None
        if response.status_code != 200:
            raise self._failure(response, json_object(response))

    async def cancel(self, upstream_id: str) -> None:
        """TTAPI cannot stop a task."""

    async def forget(self, upstream_id: str) -> None:
        """TTAPI keeps results on its own schedule."""

    async def close(self) -> None:
        """The HTTP client is shared and belongs to the caller."""

    def _failure(self, response: httpx.Response, payload: dict[str, Any] | None) -> ProviderError:
        status = response.status_code
        message = payload.get("message") if payload else None
        text = scrub(message, self._key)[:300] if isinstance(message, str) and message else ""
        if status in _ACCOUNT_FAILURES:
            fixed, kind = _ACCOUNT_FAILURES[status]
            return ProviderError(fixed, kind=kind,
                                 retry_after=retry_after(response.headers.get("retry-after")))
        if payload is None or status >= 500 or (status == 404 and not text):
            return ProviderError(f"[Upstream unavailable] HTTP {status}: {text or 'no answer'}",
                                 kind=FailureKind.UNAVAILABLE)
        if "No available accounts" in text:
            return ProviderError(f"[Upstream account] {text}", kind=FailureKind.QUEUE_FULL)
        return ProviderError(text or f"[Invalid parameter] the upstream refused it (HTTP {status})")


def failed(body: dict[str, Any]) -> ProviderUpdate:
    """A TTAPI fetch body whose ``status`` is ``FAILED``: the job failed with its message."""
    message = body.get("message")
    return ProviderUpdate(TaskState.FAILED, message=message if isinstance(message, str)
                          and message else "[Bad response] the upstream task failed")


def read_fetch(body: dict[str, Any]) -> ProviderUpdate:
    """A product's fetch body: ``imageUrl`` in ``data`` once it is ``SUCCESS``."""
    found = body.get("data")
    data: dict[str, Any] = found if isinstance(found, dict) else {}
    status = body.get("status")
    if status == "FAILED":
        return failed(body)
    if status != "SUCCESS":
        return ProviderUpdate(TaskState.RUNNING)
    url = data.get("imageUrl")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return ProviderUpdate(TaskState.FAILED,
                              message="[Bad response] the upstream finished without an image")
    return ProviderUpdate(TaskState.SUCCESS, progress=100,
                          files=(ResultFile("image", url=url, content_type=_content_type(url)),))


def _content_type(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    if path.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    return "image/webp" if path.endswith(".webp") else "image/png"
