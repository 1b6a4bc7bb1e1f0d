"""Jobs: statuses, modes (account slots) and timeouts, for every product. Pure, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from gengate.errors import BadRequest

__all__ = [
    "TIMEOUTS",
    "Job",
    "JobStatus",
    "Mode",
    "resolve_timeout",
]


class JobStatus(enum.StrEnum):
    """The four business statuses of the TTAPI contract."""

    PENDING_QUEUE = "PENDING_QUEUE"  #: admitted, waiting for a worker
    ON_QUEUE = "ON_QUEUE"  #: a worker is running it upstream
    SUCCESS = "SUCCESS"  #: results stored, quota settled
    FAILED = "FAILED"  #: ended without a result, quota refunded

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCESS, JobStatus.FAILED)

    @property
    def code(self) -> int:
        """The integer form used by ``fetch-list`` items."""
        return _STATUS_CODES[self]


_STATUS_CODES = {
    JobStatus.PENDING_QUEUE: 0,
    JobStatus.ON_QUEUE: 1,
    JobStatus.SUCCESS: 2,
    JobStatus.FAILED: 3,
}


class Mode(enum.StrEnum):
    """Speed modes: Midjourney's, and the account slots every product's jobs take."""

    FAST = "fast"
    RELAX = "relax"
    TURBO = "turbo"


#: (default and minimum, maximum) job timeout in seconds per mode
TIMEOUTS: dict[Mode, tuple[int, int]] = {
    Mode.FAST: (300, 1200),
    Mode.TURBO: (300, 1200),
    Mode.RELAX: (600, 1200),
}


def resolve_timeout(mode: Mode, requested: int | None) -> int:
    """The job's timeout: the mode's default, or the requested one if within range."""
    low, high = TIMEOUTS[mode]
    if requested is None:
        return low
    if not low <= requested <= high:
        raise BadRequest(f"timeout must be between {low} and {high} seconds for {mode} mode")
    return requested


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the service sees it (the store maps rows to this)."""

    id: str
    user_id: int
    product: str
    action: str
    mode: Mode
    status: JobStatus
    progress: int
    prompt: str
    quota: float
    timeout: int
    created_at: float
    deadline: float
    hook_url: str | None = None
    get_u_images: bool = False
    parent_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    upstream_id: str | None = None
    provider: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: the upstream account running it, and the mode whose slot it takes there
    account_id: int | None = None
    slot_mode: str | None = None
    #: submitted through /hold: runs only on the user's own accounts
    hosted: bool = False
    #: claims so far (a takeover or a move to another account is another attempt)
    attempts: int = 0

    def charged(self) -> tuple[str, int]:
        """The mode the job runs in and the price it is charged on success: a fast job
        moved to a relax slot (its ``relaxFallback``) runs in relax at relax's price."""
        if self.slot_mode and self.slot_mode != self.mode.value:
            fallback = self.params.get("fallback_quota")
            if fallback is not None:
                return self.slot_mode, min(int(fallback), int(self.quota))
        return self.mode.value, int(self.quota)
