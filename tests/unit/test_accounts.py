"""Account routing and health rules (pure)."""

from __future__ import annotations

import calendar
import random
from collections import Counter
from typing import Any, cast

import pytest

from gengate.accounts import (
    MAX_COOLDOWN,
    Account,
    AccountState,
    FailureKind,
    Placement,
    Transition,
    WorkWindows,
    choose,
    modes_of_use_mode,
    on_failure,
    slots_from,
    use_mode_of,
)
from gengate.errors import BadRequest
from gengate.jobs import Mode

NOW = calendar.timegm((2026, 11, 23, 12, 30, 0))  # 12:30 UTC
TODAY = "2026-11-23"


def _pick(accounts: list[Account], busy: dict[tuple[int, str], int] | None = None, *,
          mode: str = "fast", owner: int | None = None, pinned: int | None = None,
          fallback: bool = False, avoid: tuple[int, ...] = (), seed: int = 1) -> Any:
    # a Placement or None: callers read the placement directly and fail loudly on None
    return choose(accounts, busy or {}, mode=mode, owner_id=owner, pinned=pinned,
                  relax_fallback=fallback, now=NOW, today=TODAY, rng=random.Random(seed),
                  avoid=avoid)


def test_highest_priority_then_least_busy() -> None:
    a = Account(1, "a", "local", slots={"fast": 4}, priority=0)
    b = Account(2, "b", "local", slots={"fast": 4}, priority=5)
    c = Account(3, "c", "local", slots={"fast": 4}, priority=5)
    assert _pick([a, b, c], {(2, "fast"): 3, (3, "fast"): 1}).account_id == 3
    assert _pick([a, b, c], {(2, "fast"): 4, (3, "fast"): 4}).account_id == 1
    assert _pick([a, b, c], {(1, "fast"): 4, (2, "fast"): 4, (3, "fast"): 4}) is None


def test_weight_shares_work_among_equals() -> None:
    light = Account(1, "light", "local", slots={"fast": 4}, weight=1)
    heavy = Account(2, "heavy", "local", slots={"fast": 4}, weight=3)
    rng = random.Random(3)
    picks = Counter(
        cast(Placement, choose([light, heavy], {}, mode="fast", owner_id=None, pinned=None,
                               relax_fallback=False, now=NOW, today=TODAY, rng=rng)).account_id
        for _ in range(4000))
    assert 0.70 < picks[2] / 4000 < 0.80


def test_only_healthy_enabled_accounts_of_the_pool() -> None:
    accounts = [
        Account(1, "cooling", "local", slots={"fast": 1}, state=AccountState.COOLING),
        Account(2, "flagged", "local", slots={"fast": 1}, state=AccountState.ATTENTION),
        Account(3, "off", "local", slots={"fast": 1}, enabled=False),
        Account(4, "gone", "local", slots={"fast": 1}, deleted=True),
        Account(5, "hosted", "midjourney_proxy", owner_id=7, slots={"fast": 1}),
        Account(6, "relax-only", "local", slots={"relax": 5}),
    ]
    assert _pick(accounts) is None
    assert _pick(accounts, owner=7).account_id == 5
    assert _pick(accounts, owner=8) is None
    assert _pick(accounts, mode="relax").account_id == 6


def test_pinned_jobs_wait_for_their_account() -> None:
    home = Account(1, "home", "local", slots={"fast": 1})
    other = Account(2, "other", "local", slots={"fast": 9})
    assert _pick([home, other], pinned=1).account_id == 1
    assert _pick([home, other], {(1, "fast"): 1}, pinned=1) is None


def test_relax_fallback_only_when_asked_and_fast_is_full() -> None:
    account = Account(1, "a", "local", slots={"fast": 1, "relax": 1})
    full = {(1, "fast"): 1}
    assert _pick([account], full) is None
    placement = _pick([account], full, fallback=True)
    assert placement is not None and placement.mode == "relax"
    assert _pick([account], fallback=True).mode == "fast"


def test_accounts_where_the_job_failed_are_avoided_while_others_serve() -> None:
    first = Account(1, "first", "local", slots={"fast": 2}, priority=9)
    second = Account(2, "second", "local", slots={"fast": 2})
    assert _pick([first, second], avoid=(1,)).account_id == 2
    # the other one is full: the job waits rather than go back where it failed
    assert _pick([first, second], {(2, "fast"): 2}, avoid=(1,)) is None
    # nobody else could ever serve it: the failed account is better than nothing
    second.enabled = False
    assert _pick([first, second], avoid=(1,)).account_id == 1


def test_pacing_daily_cap_and_work_windows() -> None:
    paced = Account(1, "paced", "local", slots={"fast": 5}, next_submit_at=NOW + 10)
    capped = Account(2, "capped", "local", slots={"fast": 5}, daily_cap=3, day=TODAY,
                     day_count=3)
    night = Account(3, "night", "local", slots={"fast": 5}, work_hours="22:00-06:00")
    assert _pick([paced, capped, night]) is None
    capped.day = "2026-11-22"  # yesterday's count does not hold today
    assert _pick([paced, capped, night]).account_id == 2
    paced.next_submit_at = NOW
    assert _pick([paced]).account_id == 1
    gap = Account(4, "gap", "local", min_gap=30, gap_jitter=10)
    gaps = [gap.next_gap(random.Random(i)) for i in range(50)]
    assert all(30 <= g <= 40 for g in gaps) and len(set(gaps)) > 1


@pytest.mark.parametrize(("spec", "minute", "open_"), [
    ("", 0, True),
    ("09:00-22:50", 12 * 60 + 30, True),
    ("09:00-22:50", 22 * 60 + 50, False),
    ("09:00-22:50", 8 * 60 + 59, False),
    ("22:00-06:00", 23 * 60, True),
    ("22:00-06:00", 5 * 60 + 59, True),
    ("22:00-06:00", 12 * 60, False),
    ("01:00-02:00, 12:00-13:00", 12 * 60 + 30, True),
])
def test_work_windows(spec: str, minute: int, open_: bool) -> None:
    at = calendar.timegm((2026, 11, 23, 0, 0, 0)) + minute * 60
    assert WorkWindows(spec).open_at(at) is open_


@pytest.mark.parametrize("spec", ["9-", "nine-ten", "25:00-26:00", "10:61-11:00", "10:00"])
def test_bad_work_windows_are_a_400(spec: str) -> None:
    with pytest.raises(BadRequest, match="workHours"):
        WorkWindows(spec)


def _until(change: Transition | None) -> float | None:
    assert change is not None
    return change.until


def test_failure_transitions_per_kind() -> None:
    assert on_failure(FailureKind.JOB, "bad prompt", NOW) is None
    assert on_failure(FailureKind.LOST, "", NOW) is None
    cooling = on_failure(FailureKind.RATE_LIMITED, "429", NOW, retry_after=42)
    assert cooling is not None
    assert cooling.state is AccountState.COOLING and cooling.until == NOW + 42
    assert _until(on_failure(FailureKind.UNAVAILABLE, "", NOW)) == NOW + 30
    # repeated failures without Retry-After back off, bounded
    assert _until(on_failure(FailureKind.UNAVAILABLE, "", NOW, failures=3)) == NOW + 120
    assert _until(on_failure(FailureKind.UNAVAILABLE, "", NOW, failures=30)) == NOW + MAX_COOLDOWN
    for kind in (FailureKind.CAPTCHA, FailureKind.MODERATION, FailureKind.AUTH):
        change = on_failure(kind, "", NOW)
        assert change is not None
        assert change.state is AccountState.ATTENTION and change.until is None
        assert change.reason.startswith(kind.value)
    banned = on_failure(FailureKind.BANNED, "account banned", NOW)
    assert banned is not None
    assert banned.state is AccountState.DISABLED and "account banned" in banned.reason


def test_use_mode_and_slots() -> None:
    assert modes_of_use_mode(1) is Mode.RELAX and modes_of_use_mode(3) is Mode.TURBO
    with pytest.raises(BadRequest, match="useMode"):
        modes_of_use_mode(4)
    assert use_mode_of(["relax"]) == 1 and use_mode_of(["fast", "relax"]) == 2
    assert slots_from({"fast": 12, "relax": 3}) == {"fast": 12, "relax": 3}
    for bad in ({"warp": 1}, {"fast": -1}, {"fast": True}, {"fast": 1.5}, {"fast": 1001}):
        with pytest.raises(BadRequest, match="slots"):
            slots_from(bad)
