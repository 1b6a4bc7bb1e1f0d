"""Jobs: statuses, modes (account slots) and timeouts, for every product. Pure, no I/O."""

from __future__ import annotations

import dataclasses
import enum
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gengate.errors import BadRequest

__all__ = [
    "TIMEOUTS",
    "EngineOptions",
    "Options",
    "Job",
    "JobStatus",
    "Mode",
    "new_job_id",
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


#: the variant nibble of an RFC 9562 id, from any hex digit
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_ids = threading.Lock()
#: random hex from the OS, drawn for about 400 ids at a time (one system call, not 400)
_pool: list[Any] = ["", 0]


def _forget_pool() -> None:
    _pool[0], _pool[1] = "", 0


# a forked child must never hand out the random bits its parent holds in the pool
os.register_at_fork(after_in_child=_forget_pool)


def new_job_id() -> str:
    """A new job id: a UUID (version 7, RFC 9562) in its 36-character form, its first
    48 bits the time in milliseconds and its other 74 bits random from the OS's source.

    Ids name public result files, so they must stay unguessable (74 random bits), and
    they are the key of the jobs table and of the ledger: time-ordered ids are appended at
    the end of those indexes, where random ones would land all over them, making each
    admission dirty (and log) a page per job, more of them as the tables grow."""
    with _ids:
        hexes, at = _pool
        if at >= len(hexes):
            hexes, at = os.urandom(4000).hex(), 0
            _pool[0] = hexes
        _pool[1] = at + 20
    r = hexes[at:at + 20]
    ms = f"{time.time_ns() // 1_000_000:012x}"
    return f"{ms[:8]}-{ms[8:]}-7{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:19]}"


class Options:
    """Base of a product's typed job options (a frozen dataclass in each product).

    Stored flat in the job's ``params`` (JSON); :meth:`from_json` reads back only the
    fields the class declares, so the engine's keys and older rows never get in the way.
    """

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _names(type(self)):
            value = getattr(self, name)
            out[name] = [_jsonable(v) for v in value] if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls: type[_O], data: Mapping[str, Any]) -> _O:
        names = _name_set(cls)
        return cls(**{k: v for k, v in data.items() if k in names})


_O = TypeVar("_O", bound=Options)
#: each options class's field names (every submit and every job read asks for them)
_NAMES: dict[type, tuple[str, ...]] = {}
_NAME_SETS: dict[type, frozenset[str]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        assert dataclasses.is_dataclass(cls)
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _name_set(cls: type) -> frozenset[str]:
    names = _NAME_SETS.get(cls)
    if names is None:
        names = _NAME_SETS[cls] = frozenset(_names(cls))
    return names


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class EngineOptions(Options):
    """The engine's own keys in a job's ``params`` (every product's jobs have them)."""

    #: may take a relax slot when no fast slot is free, then charged ``fallback_quota``
    #: (milli-quota)
    relax_fallback: bool = False
    fallback_quota: int | None = None
    #: notify hookUrl at each progress step too
    hook_progress: bool = False
    #: fingerprint of the request an idempotency key stands for
    request: str | None = None
    #: accounts this job already failed on (routing avoids them)
    failed_on: tuple[int, ...] | list[int] = ()
    #: (account id, tag) of submits whose outcome is unknown: found and cancelled once
    #: the job ends
    orphans: tuple[list[Any], ...] | list[list[Any]] = ()
    #: a synchronous route waits on the job: its end is announced on the ended channel
    sync: bool = False

    @classmethod
    def of(cls, job: Job) -> EngineOptions:
        return cls.from_json(job.params)

    def merged_into(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with these options' fields that differ from the defaults."""
        out = {k: v for k, v in params.items() if k not in _ENGINE_KEYS}
        for name in _names(EngineOptions):
            value = _jsonable(getattr(self, name))
            if value != _ENGINE_DEFAULTS[name]:
                out[name] = value
        return out


_ENGINE_KEYS = frozenset(f.name for f in dataclasses.fields(EngineOptions))
_ENGINE_DEFAULTS = EngineOptions().to_json()


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
    #: the price frozen at submit, in milli-quota: the ledger's unit, whole and exact (the
    #: wire shows it in quota, :func:`gengate.quota.from_milli`)
    quota: int
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
    #: the tag of a submit whose upstream task id was never recorded (the worker died or
    #: the answer was lost): the task is looked up by it before the job is sent again
    submit_tag: str | None = None
    #: submits that may have started an upstream task (bounded by ``max_resends``)
    sends: int = 0
    #: the API key that submitted it (``None``: from before keys were recorded)
    key_id: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.quota, bool) or not isinstance(self.quota, int):
            raise TypeError(f"a job's quota is whole milli-quota, not {self.quota!r}")

    def charged(self) -> tuple[str, int]:
        """The mode the job runs in and the price (milli-quota) it is charged on success: a
        fast job moved to a relax slot (its ``relaxFallback``) runs in relax at relax's
        price."""
        if self.slot_mode and self.slot_mode != self.mode.value:
            fallback = EngineOptions.of(self).fallback_quota
            if fallback is not None:
                return self.slot_mode, min(int(fallback), self.quota)
        return self.mode.value, self.quota
