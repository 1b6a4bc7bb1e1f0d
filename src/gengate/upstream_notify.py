"""Upstream notifications: an upstream that calls a URL when one of its tasks changes
(midjourney-proxy's ``notifyHook``) is given one per account, and a call makes the worker
that follows the task poll it at once instead of at its next round.

A notification is a hint, never a result. Neither midjourney-proxy signs its calls (novicezk:
NotifyServiceImpl posts the task JSON with only a content type; trueai-org: the same from
its notify loop), both may send a task's calls out of order, twice, or not at all, so gengate
takes nothing from the body but the task's id and asks the upstream itself; rounds at the
account's interval go on beside, for the calls that never come. The URL carries a token
derived from the deployment's secret key and the account's id: only an upstream given the
URL can make gengate poll, and then only the tasks a worker follows on that account.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

__all__ = ["MAX_BODY", "NotifyLinks", "ended_task_of"]

#: the largest notification read (a task's JSON: prompt, buttons, URLs; no images)
MAX_BODY = 256 * 1024
#: the longest task id taken from one (midjourney-proxy's are 16 digits)
_MAX_ID = 128
#: the statuses both proxies end a task in (novicezk: TaskStatus; trueai-org: TaskStatus)
_ENDED = frozenset({"SUCCESS", "FAILURE", "CANCEL"})


class NotifyLinks:
    """The notification URL of each account, and the check of a token in one."""

    def __init__(self, base_url: str, key: str):
        self.base_url = base_url.rstrip("/")
        self._key = hashlib.sha256(f"gengate-upstream-notify:{key}".encode()).digest()

    def __repr__(self) -> str:
        return f"NotifyLinks({self.base_url!r})"

    def token(self, account_id: int) -> str:
        return hmac.new(self._key, str(account_id).encode(), hashlib.sha256).hexdigest()[:32]

    def url(self, account_id: int) -> str:
        return f"{self.base_url}/upstream/notify/{account_id}/{self.token(account_id)}"

    def valid(self, account_id: int, token: str) -> bool:
        return hmac.compare_digest(self.token(account_id), token)


def ended_task_of(body: bytes) -> str | None:
    """The task a notification says has ended (``id`` and ``status`` of a
    midjourney-proxy's task JSON: SUCCESS, FAILURE or CANCEL); None for any other call.

    Only ends are polled early: trueai-org's proxy calls every 3 s for as long as a task
    runs (its notify loop), which for thousands of running tasks would cost more requests
    than the rounds; progress is seen at the next round. The status only picks which
    calls are worth a poll: what the job becomes is what the upstream then answers."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("status") not in _ENDED:
        return None
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if 0 < len(text) <= _MAX_ID else None
