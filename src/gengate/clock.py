"""Time, injectable: the engine asks a clock, so tests can move it instead of sleeping."""

from __future__ import annotations

import functools
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "timestamp"]


def timestamp(epoch: float | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, the contract's format."""
    if epoch is None:
        return None
    return _second(int(epoch))


@functools.lru_cache(maxsize=4096)
def _second(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that tests move forward by hand."""

    def __init__(self, start: float | None = None):
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
