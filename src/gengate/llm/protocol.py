"""What the Anthropic and OpenAI adapters share: errors at the boundary, the upstream
request, and an SSE splitter that keeps at most one partial event in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

import aiohttp
import orjson

from gengate.errors import GengateError
from gengate.llm.accounts import LlmAccount
from gengate.llm.pricing import Usage

__all__ = [
    "EventSplitter",
    "Protocol",
    "UpstreamClient",
    "UpstreamFailed",
    "UpstreamReply",
    "UpstreamResponse",
    "UpstreamTransportError",
    "passed_headers",
]

#: client headers never sent upstream (auth is the account's, framing is the client's)
_DROP = frozenset({
    b"host", b"content-length", b"authorization", b"x-api-key", b"tt-api-key", b"connection",
    b"accept-encoding", b"transfer-encoding", b"cookie", b"keep-alive", b"te", b"upgrade",
    b"proxy-authorization", b"expect",
})


class UpstreamReply(GengateError):
    """An upstream's own error answer, passed to the client as it came (status, body and
    the headers :func:`passed_headers` keeps) when no other account answers instead.

    ``failover``: another account may answer instead (429, 529, 5xx); ``retry``: the same
    account may be asked again first (5xx).
    """

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str] | None = None,
                 *, failover: bool = False, retry: bool = False):
        super().__init__(f"upstream answered {status}", headers=dict(headers or {}))
        self.status_code = status
        self.body = body
        self.failover = failover
        self.retry = retry


class UpstreamFailed(GengateError):
    """No upstream could answer: connection errors, 5xx, or 429/529 from every account."""

    def __init__(self, message: str, status: int = 502,
                 headers: Mapping[str, str] | None = None, retryable: bool = True):
        super().__init__(message, headers=dict(headers or {}))
        self.status_code = status
        self.retryable = retryable


#: upstream response headers a client sees with a relayed answer (success or error): the
#: upstream's request id, its rate-limit state and its own Retry-After, never invented
_PASSED = frozenset({b"request-id", b"x-request-id", b"retry-after"})
_PASSED_PREFIXES = (b"anthropic-ratelimit-", b"x-ratelimit-")


def passed_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream headers relayed to the client, names lower-cased."""
    out = []
    for name, value in raw:
        low = name.lower()
        if low in _PASSED or low.startswith(_PASSED_PREFIXES):
            out.append((low, value))
    return out


class Protocol:
    """One wire protocol: how to call an account and how to speak errors to clients."""

    kind = ""
    #: the message of a 401 (unknown, revoked or expired key) in this protocol
    unauthorized = "invalid API key"

    def url(self, account: LlmAccount, path: str) -> str:
        raise NotImplementedError

    def auth_headers(self, account: LlmAccount) -> dict[str, str]:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def stream_error(self, message: str) -> bytes:
        raise NotImplementedError

    def usage_from_body(self, body: Mapping[str, Any], usage: Usage) -> None:
        found = body.get("usage")
        if isinstance(found, Mapping):
            usage.merge(found)

    def usage_from_event(self, data: Mapping[str, Any], usage: Usage) -> None:
        raise NotImplementedError

    def headers(self, account: LlmAccount, client: list[tuple[bytes, bytes]]) -> dict[str, str]:
        """Client headers to pass through (e.g. ``anthropic-version``) plus the account's."""
        out = {k.decode("latin-1"): v.decode("latin-1") for k, v in client if k not in _DROP}
        out.update(self.auth_headers(account))
        out["content-type"] = "application/json"
        return out


class UpstreamTransportError(Exception):
    """The connection failed: refused, reset, timed out, or a body cut short."""


_TRANSPORT = (aiohttp.ClientError, asyncio.TimeoutError)


class UpstreamResponse:
    """An upstream answer whose body is read (or streamed) on demand."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse):
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive."""
        return self._response.headers

    @property
    def raw_headers(self) -> Iterable[tuple[bytes, bytes]]:
        return self._response.raw_headers

    async def aread(self) -> bytes:
        try:
            return await self._response.read()
        except _TRANSPORT as exc:
            raise UpstreamTransportError(type(exc).__name__) from exc

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Chunks as they arrive."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except _TRANSPORT as exc:
            raise UpstreamTransportError(type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Give the connection back when the body was read; drop it when it was not (a
        cancelled stream must not leave the upstream generating)."""
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class UpstreamClient:
    """One pooled HTTP client for every upstream account (aiohttp: its connection pool
    costs the same at any concurrency)."""

    def __init__(self, connect_timeout: float, read_timeout: float, max_connections: int = 1000):
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                              sock_read=read_timeout)
        self._max = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max, ttl_dns_cache=60),
                timeout=self._timeout,
                # no compression: events must reach the client as the upstream sends them
                skip_auto_headers=("Accept-Encoding",), auto_decompress=False,
            )
        return self._session

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> UpstreamResponse:
        """Send the request; the response's body is not read yet."""
        try:
            response = await self._open_session().post(url, data=body, headers=headers,
                                                       allow_redirects=False)
        except _TRANSPORT as exc:
            raise UpstreamTransportError(type(exc).__name__) from exc
        return UpstreamResponse(response)

    async def get_json(self, url: str, headers: dict[str, str],
                       limit: int = 1024 * 1024) -> Any:
        """GET a small JSON document (model lists); errors raise UpstreamTransportError."""
        try:
            async with self._open_session().get(url, headers=headers, allow_redirects=False,
                                                 timeout=aiohttp.ClientTimeout(total=10)) as r:
                if r.status != 200:
                    raise UpstreamTransportError(f"HTTP {r.status}")
                body = await r.content.read(limit + 1)
        except _TRANSPORT as exc:
            raise UpstreamTransportError(type(exc).__name__) from exc
        if len(body) > limit:
            raise UpstreamTransportError("answer too large")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamTransportError("not JSON") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class EventSplitter:
    """Cuts a byte stream into whole SSE events (each ending with a blank line)."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        data = self._rest + chunk if self._rest else chunk
        if b"\r\n" in data:
            data = data.replace(b"\r\n", b"\n")
        start = 0
        while True:
            end = data.find(b"\n\n", start)
            if end < 0:
                break
            yield data[start:end + 2]
            start = end + 2
        self._rest = data[start:]

    @property
    def pending(self) -> bytes:
        return self._rest


def event_data(event: bytes) -> bytes | None:
    """The ``data:`` payload of one SSE event (lines joined), or None."""
    parts = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(parts) if parts else None
