"""The LLM relay's money on both databases: holds decided in order, settlements exact."""

from __future__ import annotations

import time

from gengate.errors import InsufficientBalance
from gengate.store import Store
from gengate.store.llmrows import UsageRow

from .test_store import store  # noqa: F401 - the SQLite/PostgreSQL store fixture


def _usage(request_id: str, user_id: int, cost: int) -> UsageRow:
    return UsageRow(request_id, user_id, "claude-x", "a1", 10, 5, 0, 0, cost, "ok",
                    time.time(), 12)


async def test_holds_and_settlements_balance(store: Store) -> None:  # noqa: F811
    now = time.time()
    user = await store.create_user("llm@example.com", 5000, 10, now)
    results = await store.llm_hold_many(
        [(user.id, "llm_a", 2000, None), (user.id, "llm_b", 2000, None),
         (user.id, "llm_c", 2000, None)], now)
    assert results[:2] == [None, None] and isinstance(results[2], InsufficientBalance)
    charged = await store.llm_settle_many(
        [(_usage("llm_a", user.id, 700), 2000), (_usage("llm_b", user.id, 9000), 2000)], now)
    # the upstream's usage is billed in full: llm_b's 9000 is its 2000 hold plus 7000 more
    assert charged == [700, 9000]
    user = await store.get_user(user.id)
    assert user.balance == 5000 - 700 - 9000 and user.freeze_balance == 0
    totals = await store.ledger_totals(user.id)
    assert totals == {"topup": 5000, "freeze": 4000, "settle": 2700, "refund": 1300,
                      "overage": 7000}
    rows = await store.llm_usage(user.id, 1, 10)
    assert sorted(r.cost for r in rows) == [700, 9000]
    # below zero: every hold is refused until a top-up
    refused = await store.llm_hold_many([(user.id, "llm_d", 1, None)], now)
    assert isinstance(refused[0], InsufficientBalance)
    await store.topup(user.id, 4701, now)
    assert await store.llm_hold_many([(user.id, "llm_e", 1, None)], now) == [None]
    assert await store.llm_purge_usage(time.time() + 1) == 2
