"""What a midjourney-proxy's answers mean: a task's state as a :class:`ProviderUpdate`, and
every refusal or failure as a :class:`ProviderError` or a ``FAILED`` update whose public
message starts with a bracketed class (``[Upstream busy]``, ``[Banned prompt detected]``...)
and whose :class:`FailureKind` tells routing whether the job or the account is at fault.

Account-level task failures: when a task ends ``FAILURE`` for a reason that is the
account's (banned, CAPTCHA, moderation, token, no instance available), its update is
``FAILED`` with that :class:`FailureKind` (the worker sends the job to another account) and a
message that starts with ``[Upstream account] `` followed by the upstream's reason;
:func:`failure_kind` gives the kind back from such a message (``None`` for the job's own
failures).

Pure functions of the answers; the requests are
:mod:`gengate.products.midjourney.providers.midjourney_proxy`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gengate.accounts import FailureKind
from gengate.products.midjourney.providers.proxy_forks import follow_ups
from gengate.providers.base import ProviderError, ProviderUpdate, TaskState

__all__ = ["ACCOUNT_PREFIX", "classify", "error", "failed", "failure_kind", "instance_error",
           "refusal", "task_update"]

#: messages of account-level task failures start with this (see the module's docstring)
ACCOUNT_PREFIX = "[Upstream account] "
#: the titles of Midjourney's own failures that the prompt causes; trueai-org stores them as
#: "title, description", novicezk as "[title] description"
_PROMPT_TITLES = ("Banned prompt detected", "Banned prompt", "Invalid parameter",
                  "Invalid link!", "Invalid link", "Image denied", "Invalid prompt")
#: trueai-org fails a task whose prompt holds a banned word with this (DiscordService.cs)
_SENSITIVE = "可能包含敏感词"
_BRACKETED = re.compile(r"^\[[^\[\]]{1,80}\] ?")
#: the task statuses of work still under way (both projects' TaskStatus)
_RUNNING = frozenset({"NOT_START", "SUBMITTED", "IN_PROGRESS", "MODAL"})
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
#: a task's failReason blames the account only when it says so: free text such as "the
#: reference image link has expired" is about the job
_ACCOUNT_REASON = re.compile(
    r"\baccount\b|captcha|verify you|human verification|pending mod|moderation|"
    r"\btoken\b|unauthori[sz]ed|no available (account|instance)", re.IGNORECASE)


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


def error(kind: FailureKind, description: str) -> ProviderError:
    """A :class:`ProviderError` for an account- or job-level refusal with this text."""
    if kind is FailureKind.UNAVAILABLE:
        return ProviderError(f"[Upstream unavailable] {description}", kind=kind)
    if kind.account_level:
        return ProviderError(f"{ACCOUNT_PREFIX}{description}", kind=kind)
    return ProviderError(f"[Upstream failed] {description}", kind=kind)


def refusal(code: Any, description: str, properties: Mapping[str, Any]) -> ProviderError:
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
    return error(classify(description), description or f"upstream code {code}")


def instance_error(instance: Mapping[str, Any]) -> ProviderError:
    """Why an instance that is disabled or locked cannot take work."""
    reason = str(instance.get("disabledReason") or "")
    kind = classify(reason) if reason else FailureKind.UNAVAILABLE
    if instance.get("lock") and kind is not FailureKind.BANNED:
        kind = FailureKind.CAPTCHA
        reason = reason or "CAPTCHA verification required"
    if not kind.account_level:
        kind = FailureKind.UNAVAILABLE
    return error(kind, reason or "the account's instance is disabled")


def task_update(item: Mapping[str, Any], protocol: str) -> ProviderUpdate:
    """A task as the proxy lists it, for an account speaking ``protocol``."""
    status = item.get("status")
    if status in _RUNNING:
        return ProviderUpdate(TaskState.RUNNING, progress=_progress(item.get("progress")))
    if status == "SUCCESS":
        return _success(item, follow_ups(item, protocol))
    if status == "CANCEL":
        return ProviderUpdate(TaskState.FAILED,
                              message="[Cancelled] the upstream cancelled the task")
    if status == "FAILURE":
        return failed(str(item.get("failReason") or "the upstream task failed"))
    return ProviderUpdate(TaskState.RUNNING)  # a status this adapter does not know yet


def failed(reason: str) -> ProviderUpdate:
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


def _progress(value: Any) -> int:
    match = _PERCENT.search(str(value or ""))
    return min(99, int(match[1])) if match else 0


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
