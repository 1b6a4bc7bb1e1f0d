"""Small pieces shared by the HTTP adapters of the image products (BFL, OpenAI Images,
the TTAPI relay): transport failures as :class:`ProviderError`, ``Retry-After``, the JSON
object of an answer, keeping a key out of public messages, and polling an upstream that
answers for one task at a time."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from gengate.providers.base import FailureKind, ProviderError, ProviderUpdate, TaskState

__all__ = ["PollAnswer", "json_object", "poll_each", "retry_after", "scrub", "transport_error"]

#: one task's poll: its update, the failure that kept the upstream from answering, or None
#: (the upstream does not know the task: it is left out, i.e. lost)
PollAnswer = ProviderUpdate | ProviderError | None


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


def _still_running(upstream_id: str) -> ProviderUpdate:
    return ProviderUpdate(TaskState.RUNNING)


async def poll_each(upstream_ids: list[str], fetch: Callable[[str], Awaitable[PollAnswer]], *,
                    running: Callable[[str], ProviderUpdate] = _still_running,
                    ) -> dict[str, ProviderUpdate]:
    """Poll each task on its own, all at once (``fetch`` bounds its own concurrency).

    A failure that is the account's (its key, balance, ban, queue: anything account-level
    but a passing outage) is raised, as no task of the account can go on. Any other failed
    poll leaves its task running as ``running`` says (the last progress seen, say), unless
    every poll failed: then the upstream itself is down and the first failure is raised."""
    ids = list(dict.fromkeys(upstream_ids))
    answers = await asyncio.gather(*(fetch(i) for i in ids))
    out: dict[str, ProviderUpdate] = {}
    errors = []
    for upstream_id, answer in zip(ids, answers, strict=True):
        if isinstance(answer, ProviderError):
            if answer.kind.account_level and answer.kind is not FailureKind.UNAVAILABLE:
                raise answer
            errors.append(answer)
            out[upstream_id] = running(upstream_id)
        elif answer is not None:
            out[upstream_id] = answer
    if ids and len(errors) == len(ids):
        raise errors[0]
    return out
