"""Upstream accounts: what they are, how their health moves, and which one takes a job. Pure.

An account is one upstream login (a midjourney-proxy instance, a TTAPI-compatible key, or
the built-in ``local`` renderer). It serves some speed modes, each with a number of
concurrent slots, and may be paced (a minimum gap between submissions, with jitter),
capped per UTC day, and limited to work windows. Accounts with no owner form the
operator's pool; an account with an owner is that user's hosted account and serves only
that user's ``/hold`` jobs.

Health is a small state machine::

    healthy ──(rate limited, unavailable, queue full)──► cooling(reason, until)
       ▲                                                    │ probe succeeds after `until`
       ├────────────────────────────────────────────────────┘
       ├──(CAPTCHA, moderation hold, token rejected)──► attention(reason)
       │                                                    │ a later probe succeeds
       └────────────────────────────────────────────────────┘
    any ──(banned)──► disabled(reason)        (only an operator enables it again)

Only healthy accounts take new jobs.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gengate.errors import BadRequest
from gengate.jobs import Mode

__all__ = [
    "Account",
    "AccountState",
    "FailureKind",
    "Placement",
    "Transition",
    "WorkWindows",
    "choose",
    "on_failure",
    "use_mode_of",
    "modes_of_use_mode",
]

#: TTAPI hosting's ``useMode``: 1 relax, 2 fast, 3 turbo
_USE_MODES = {1: Mode.RELAX, 2: Mode.FAST, 3: Mode.TURBO}


def modes_of_use_mode(use_mode: int) -> Mode:
    try:
        return _USE_MODES[use_mode]
    except KeyError:
        raise BadRequest("useMode: must be 1 (relax), 2 (fast) or 3 (turbo)") from None


def use_mode_of(modes: Iterable[str]) -> int:
    """The ``useMode`` shown for an account: its fastest mode."""
    found = set(modes)
    for number in (3, 2, 1):
        if _USE_MODES[number].value in found:
            return number
    return 1


class FailureKind(enum.StrEnum):
    """Why an upstream call failed, as far as routing is concerned."""

    JOB = "job"  #: this job cannot be done (bad prompt, bad input); the account is fine
    RATE_LIMITED = "rate_limited"  #: 429, honour Retry-After
    UNAVAILABLE = "unavailable"  #: 5xx, refused or dropped connection, timeout, garbage
    QUEUE_FULL = "queue_full"  #: the upstream's own queue is full (midjourney-proxy 23)
    CAPTCHA = "captcha"  #: a human must solve a challenge
    MODERATION = "moderation"  #: the account is held for review
    AUTH = "auth"  #: token or key rejected or expired
    BANNED = "banned"  #: the account is gone for good
    LOST = "lost"  #: the upstream no longer knows the task

    @property
    def account_level(self) -> bool:
        """The account, not the job, is the problem: the job may run on another account."""
        return self not in (FailureKind.JOB, FailureKind.LOST)


class AccountState(enum.StrEnum):
    HEALTHY = "healthy"
    COOLING = "cooling"
    ATTENTION = "attention"
    DISABLED = "disabled"


#: seconds an account cools for, per failure kind, when the upstream gives no Retry-After
COOLDOWNS: dict[FailureKind, float] = {
    FailureKind.RATE_LIMITED: 60.0,
    FailureKind.UNAVAILABLE: 30.0,
    FailureKind.QUEUE_FULL: 15.0,
}
_ATTENTION = {
    FailureKind.CAPTCHA: "CAPTCHA: a human must solve the upstream's challenge",
    FailureKind.MODERATION: "held for moderation by the upstream",
    FailureKind.AUTH: "the upstream rejected the account's token or key",
}
#: cooling after repeated failures grows up to this many seconds
MAX_COOLDOWN = 600.0


@dataclass(frozen=True, slots=True)
class Transition:
    """A health change to record: the new state, why, and until when (cooling)."""

    state: AccountState
    reason: str
    until: float | None = None


def on_failure(kind: FailureKind, detail: str, now: float, *, failures: int = 1,
               retry_after: float | None = None) -> Transition | None:
    """The state an account moves to after a failure of ``kind`` (None: no change).

    ``failures`` counts consecutive failures including this one; cooling without a
    Retry-After doubles with each (bounded by :data:`MAX_COOLDOWN`).
    """
    if not kind.account_level:
        return None
    reason = f"{kind.value}: {detail}" if detail else kind.value
    if kind is FailureKind.BANNED:
        return Transition(AccountState.DISABLED, reason)
    if kind in _ATTENTION:
        return Transition(AccountState.ATTENTION, f"{kind.value}: {detail or _ATTENTION[kind]}")
    if retry_after is not None and retry_after > 0:
        wait = min(retry_after, MAX_COOLDOWN * 6)
    else:
        wait = min(COOLDOWNS.get(kind, 30.0) * 2 ** max(0, failures - 1), MAX_COOLDOWN)
    return Transition(AccountState.COOLING, reason, now + wait)


class WorkWindows:
    """UTC time-of-day windows an account may take jobs in, e.g. ``09:00-22:50``.

    Several windows are separated by commas; a window may wrap midnight (``22:00-06:00``).
    Empty means always.
    """

    def __init__(self, spec: str | None):
        self.spec = (spec or "").strip()
        self._ranges: list[tuple[int, int]] = []
        for part in filter(None, (p.strip() for p in self.spec.split(","))):
            start, sep, end = part.partition("-")
            if not sep:
                raise BadRequest(f"workHours: `{part}` is not HH:MM-HH:MM")
            self._ranges.append((_minutes(start), _minutes(end)))

    def open_at(self, now: float) -> bool:
        if not self._ranges:
            return True
        tm = time.gmtime(now)
        minute = tm.tm_hour * 60 + tm.tm_min
        for start, end in self._ranges:
            if start <= end and start <= minute < end:
                return True
            if start > end and (minute >= start or minute < end):
                return True
        return False


def _minutes(text: str) -> int:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or len(minutes) != 2:
        raise BadRequest(f"workHours: `{text.strip()}` is not HH:MM")
    try:
        h, m = int(hours), int(minutes)
    except ValueError:
        raise BadRequest(f"workHours: `{text}` is not HH:MM") from None
    if not (0 <= h <= 24 and 0 <= m < 60 and h * 60 + m <= 24 * 60):
        raise BadRequest(f"workHours: `{text}` is not a time of day")
    return h * 60 + m


@dataclass(slots=True)
class Account:
    """An upstream account as routing sees it (credentials stay in the store)."""

    id: int
    name: str
    provider: str
    owner_id: int | None = None  #: None: the operator's pool; else the hosting user
    slots: Mapping[str, int] = field(default_factory=dict)  #: mode -> concurrent jobs
    priority: int = 0  #: higher is tried first
    weight: int = 1  #: share among equally good accounts
    enabled: bool = True
    state: AccountState = AccountState.HEALTHY
    state_reason: str = ""
    state_until: float | None = None
    daily_cap: int | None = None
    day: str = ""  #: the UTC day ``day_count`` counts
    day_count: int = 0
    min_gap: float = 0.0  #: seconds between two submissions
    gap_jitter: float = 0.0  #: up to this many seconds more, at random
    next_submit_at: float = 0.0
    work_hours: str = ""
    deleted: bool = False
    #: the products whose jobs it runs (``*``: every product, the local renderer)
    products: tuple[str, ...] = ("midjourney",)

    @property
    def modes(self) -> list[str]:
        return [m for m, n in self.slots.items() if n > 0]

    def serves(self, product: str) -> bool:
        return product in self.products or "*" in self.products

    def usable(self) -> bool:
        """Enabled, not deleted, and healthy."""
        return self.enabled and not self.deleted and self.state is AccountState.HEALTHY

    def can_serve(self, mode: str) -> bool:
        """Could take a job of ``mode`` at some point (used for "No available accounts")."""
        return (self.enabled and not self.deleted and self.slots.get(mode, 0) > 0
                and self.state in (AccountState.HEALTHY, AccountState.COOLING))

    def open_now(self, now: float, today: str) -> bool:
        """Pacing, daily cap and work windows allow a submission now."""
        if now < self.next_submit_at:
            return False
        if self.daily_cap is not None and self.day == today and self.day_count >= self.daily_cap:
            return False
        try:
            return WorkWindows(self.work_hours).open_at(now)
        except BadRequest:
            return True  # a stored window that no longer parses must not stop routing

    def next_gap(self, rng: random.Random) -> float:
        return self.min_gap + (rng.uniform(0, self.gap_jitter) if self.gap_jitter else 0.0)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a job runs: the account and the mode whose slot it takes."""

    account_id: int
    mode: str


def choose(accounts: Sequence[Account], busy: Mapping[tuple[int, str], int], *, mode: str,
           owner_id: int | None, pinned: int | None, relax_fallback: bool, now: float,
           today: str, rng: random.Random, avoid: Collection[int] = (),
           product: str = "midjourney") -> Placement | None:
    """The account (and slot mode) for one job, or None if none can take it now.

    Candidates: usable accounts of the job's pool (the operator's, or the hosting user's
    own), open now, with a free slot for the mode; a follow-up action only considers the
    account that made its parent (``pinned``). Among them: the highest priority, then the
    least busy (share of the mode's slots in use), then a draw weighted by ``weight``.
    When no fast slot is free and the job allows it, a relax slot is tried the same way.
    Accounts in ``avoid`` (where this job already failed) are left out while another
    usable account of the pool serves the mode. Only accounts that run the job's
    ``product`` are considered; slots are per mode, shared by the account's products.
    """
    accounts = [a for a in accounts if a.serves(product)]
    if avoid and pinned is None:
        others = [a for a in accounts if a.id not in avoid]
        if any(a.owner_id == owner_id and a.usable() and a.slots.get(mode, 0) > 0
               for a in others):
            accounts = others
    tries = [mode]
    if relax_fallback and mode == Mode.FAST.value:
        tries.append(Mode.RELAX.value)
    for slot_mode in tries:
        best: list[tuple[Account, float]] = []
        best_key: tuple[int, float] | None = None
        for account in accounts:
            if account.owner_id != owner_id or not account.usable():
                continue
            if pinned is not None and account.id != pinned:
                continue
            slots = account.slots.get(slot_mode, 0)
            used = busy.get((account.id, slot_mode), 0)
            if used >= slots or not account.open_now(now, today):
                continue
            key = (-account.priority, used / slots)
            if best_key is None or key < best_key:
                best, best_key = [(account, used / slots)], key
            elif key == best_key:
                best.append((account, used / slots))
        if best:
            picked = rng.choices([a for a, _ in best],
                                 weights=[max(1, a.weight) for a, _ in best])[0]
            return Placement(picked.id, slot_mode)
    return None


def slots_from(raw: Mapping[str, Any]) -> dict[str, int]:
    """Validated ``{"fast": 12, "relax": 3}``; unknown modes and negatives are a 400."""
    out: dict[str, int] = {}
    for mode, value in raw.items():
        if mode not in {m.value for m in Mode}:
            raise BadRequest(f"slots: unknown mode `{mode}`; use fast, relax or turbo")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
            raise BadRequest(f"slots.{mode}: must be an integer from 0 to 1000")
        out[mode] = value
    return out
