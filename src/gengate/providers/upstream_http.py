"""Small pieces shared by the HTTP adapters of the image products (BFL, OpenAI Images,
the TTAPI relay): transport failures as :class:`ProviderError`, ``Retry-After``, the JSON
object of an answer, and keeping a key out of public messages."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from gengate.providers.base import FailureKind, ProviderError

__all__ = ["json_object", "retry_after", "scrub", "transport_error"]


def transport_error(exc: httpx.HTTPError, secret: str, *,
                    submit: bool = False) -> ProviderError:
    """A refused, dropped or timed-out request: the upstream is unavailable for now. A
    ``submit`` that left this machine may have started a task the answer never told of
    (``uncertain``: the engine bounds such resends)."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return ProviderError(scrub(f"[Upstream unavailable] {detail}", secret),
                         kind=FailureKind.UNAVAILABLE, uncertain=submit and sent)


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object of an answer, or None when it is not one."""
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def scrub(text: str, secret: str) -> str:
    """Messages are public: a key must not ride along even if an upstream echoes it."""
    return text.replace(secret, "***") if secret else text


def retry_after(value: str | None) -> float | None:
    """Seconds from ``Retry-After`` (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
