"""Retry schedules as values: how many attempts, and how long to wait before each."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` in all; the wait before attempt n+1 is ``base * factor**(n-1)``, capped
    at ``cap`` and spread by +-``jitter`` (a fraction) so that retries do not stampede."""

    attempts: int = 3
    base: float = 5.0
    factor: float = 4.0
    cap: float = 3600.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"invalid retry policy: {self}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``None`` when
        that was the last one."""
        if attempt >= self.attempts:
            return None
        wait = min(self.cap, self.base * self.factor ** (attempt - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, wait * (1 + spread))
