"""Exit statuses of the client commands, and the one line each error is told in."""

from __future__ import annotations

from enum import IntEnum

from gengate import errors
from gengate.client import Unreachable, WaitTimeout

__all__ = ["Exit", "explain", "exit_for"]


class Exit(IntEnum):
    """``gengate``'s exit statuses (documented in docs/cli.md)."""

    OK = 0
    #: a job ended FAILED
    JOB_FAILED = 1
    #: bad usage: an unknown option, a missing argument or API key
    USAGE = 2
    #: the server refused a request (a bad key, no balance, a full queue, a rate limit, a
    #: bad field, an unknown job)
    REFUSED = 3
    #: the server could not be reached
    UNREACHABLE = 4
    #: --wait-timeout passed before a job ended (the job goes on)
    TIMEOUT = 5


def exit_for(exc: BaseException) -> Exit:
    if isinstance(exc, Unreachable):
        return Exit.UNREACHABLE
    if isinstance(exc, WaitTimeout):
        return Exit.TIMEOUT
    return Exit.REFUSED


def explain(exc: BaseException) -> str:
    """One line that says what happened and what to do."""
    if isinstance(exc, Unreachable):
        return (f"cannot reach gengate at {exc.base_url} ({exc.reason}): start it with "
                "`gengate serve`, or set GENGATE_BASE_URL (or --base-url) to its address")
    if isinstance(exc, WaitTimeout):
        return (f"{exc}: it goes on; follow it with `gengate wait {exc.job.id}`, or give a "
                "longer --wait-timeout")
    if not isinstance(exc, errors.GengateError):
        return f"{type(exc).__name__}: {exc} (--debug shows where)"
    said = f"HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, errors.Unauthorized):
        return (f"the server refused the API key ({said}): set GENGATE_API_KEY (or --key) to a "
                "key of this server (`gengate admin issue-key USER_ID` makes one)")
    if isinstance(exc, errors.InsufficientBalance):
        return (f"not enough balance for this job ({said}): `gengate info` shows it; an "
                "operator adds quota with `gengate admin topup USER_ID AMOUNT`")
    if isinstance(exc, errors.QueueFull):
        return (f"your queue is full ({said}): wait for your jobs in progress to end "
                "(`gengate list --status ON_QUEUE`), or have max_queue raised "
                "(`gengate admin set-max-queue`)")
    if isinstance(exc, errors.RateLimited):
        after = exc.headers.get("retry-after") or exc.headers.get("Retry-After")
        when = f"retry in {after} s" if after else "retry in a moment"
        return (f"rate limited ({said}): {when}, or have the key's limits raised "
                "(`gengate admin set-rate`)")
    return f"the server refused the request ({said})"
