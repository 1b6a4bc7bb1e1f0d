"""What the video upstream adapters share: one HTTP call whose failures become
:class:`ProviderError` s with the right kind (the job's fault, or the account's), with the
account's key scrubbed from every message."""

from __future__ import annotations

from typing import Any

import httpx

from gengate.accounts import FailureKind
from gengate.providers.base import ProviderError

__all__ = ["VideoHttp", "progress_of"]

#: statuses that say the account, not the job, is at fault
_ACCOUNT: dict[int, tuple[str, FailureKind]] = {
    401: ("[Upstream account] the upstream rejected the account's key", FailureKind.AUTH),
    402: ("[Upstream account] the upstream account's balance is exhausted", FailureKind.AUTH),
    403: ("[Upstream account] the upstream blocked the account", FailureKind.BANNED),
    429: ("[Upstream account] the upstream is rate limiting the account",
          FailureKind.RATE_LIMITED),
    499: ("[Upstream account] the upstream queue is full", FailureKind.QUEUE_FULL),
}


def progress_of(value: Any) -> int:
    """``"50"``, ``"50%"``, ``50`` or null, as a percentage below 100."""
    if isinstance(value, str):
        value = value.strip().rstrip("%")
    try:
        return max(0, min(99, int(float(value))))
    except (TypeError, ValueError):
        return 0


class VideoHttp:
    """An account's base URL, headers and key, and the shared client."""

    def __init__(self, base_url: str, headers: dict[str, str], key: str,
                 http: httpx.AsyncClient, timeout: float):
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._key = key
        self._http = http
        self._timeout = httpx.Timeout(timeout)

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    async def call(self, method: str, path: str, *, missing_ok: bool = False,
                   **kwargs: Any) -> httpx.Response | None:
        """The answer of a 2xx (None for a 404 where ``missing_ok``); a
        :class:`ProviderError` for anything else. ``message_of`` reads the error text."""
        try:
            response = await self._http.request(method, f"{self.base_url}{path}",
                                                headers=self._headers, timeout=self._timeout,
                                                **kwargs)
        except httpx.HTTPError as exc:
            sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout,
                                        httpx.PoolTimeout))
            raise ProviderError(self.scrub(f"[Upstream unavailable] {type(exc).__name__}"),
                                kind=FailureKind.UNAVAILABLE,
                                uncertain=sent and method == "POST") from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.is_success:
            return response
        status = response.status_code
        if status in _ACCOUNT:
            text, kind = _ACCOUNT[status]
            raise ProviderError(text, kind=kind)
        message = self.scrub(_message(response))
        if status >= 500 or status == 404:
            raise ProviderError(f"[Upstream unavailable] HTTP {status}: {message}",
                                kind=FailureKind.UNAVAILABLE)
        raise ProviderError(message or f"[Invalid parameter] the upstream refused it "
                            f"(HTTP {status})")

    def json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderError("[Bad response] the upstream answered no JSON object",
                                kind=FailureKind.UNAVAILABLE)
        return body


def _message(response: httpx.Response) -> str:
    """The upstream's reason: TTAPI's ``message`` or OpenAI's ``error.message``."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    message = body.get("message")
    return message if isinstance(message, str) else ""
