"""Per-key limits: a user's own values, and the deployment's defaults where unset."""

from __future__ import annotations

import pytest

from gengate.errors import RateLimited
from gengate.ratelimit import Limits, LocalCounter, RateLimiter


async def test_unset_per_user_limits_fall_back_to_the_defaults() -> None:
    limiter = RateLimiter(None, Limits(0, 2), 0)
    await limiter.check_key("k", Limits(100, None))
    await limiter.check_key("k", Limits(100, None))
    with pytest.raises(RateLimited):
        await limiter.check_key("k", Limits(100, None))
    await limiter.check_key("k", Limits(100, 0))


def test_local_counter_slides_the_previous_window_out() -> None:
    now = [100.0]
    counter = LocalCounter(lambda: now[0])
    assert [counter.hit(3, 10, "k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert counter.hit(3, 10, "k") == 10.0  # full: wait for the window to end
    assert counter.hit(3, 10, "other") == 0.0  # keys count apart
    now[0] = 112.5  # next window, a quarter in: 3 x 0.75 = 2.25 still count
    assert counter.hit(3, 10, "k") == 7.5
    now[0] = 117.0  # 3 x 0.3 = 0.9 count: one more fits, not two
    assert counter.hit(3, 10, "k") == 0.0
    assert counter.hit(3, 10, "k") == 0.0
    assert counter.hit(3, 10, "k") == 3.0
    now[0] = 140.0  # windows later: the old counts are gone
    assert [counter.hit(3, 10, "k") for _ in range(3)] == [0.0, 0.0, 0.0]
