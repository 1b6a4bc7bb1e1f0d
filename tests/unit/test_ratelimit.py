"""Per-key limits: a user's own values, and the deployment's defaults where unset."""

from __future__ import annotations

import pytest

from gengate.errors import RateLimited
from gengate.ratelimit import Limits, RateLimiter


async def test_unset_per_user_limits_fall_back_to_the_defaults() -> None:
    limiter = RateLimiter(None, Limits(0, 2), 0)
    await limiter.check_key("k", Limits(100, None))
    await limiter.check_key("k", Limits(100, None))
    with pytest.raises(RateLimited):
        await limiter.check_key("k", Limits(100, None))
    await limiter.check_key("k", Limits(100, 0))
