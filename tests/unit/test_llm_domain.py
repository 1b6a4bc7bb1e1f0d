"""Token prices, account ordering and the SSE splitter: pure."""

from __future__ import annotations

from gengate.llm.accounts import LlmAccount, LlmAccounts, retry_after_seconds
from gengate.llm.anthropic import ANTHROPIC
from gengate.llm.prices import price_table
from gengate.llm.pricing import Usage
from gengate.llm.protocol import EventSplitter


def test_cost_per_token_class_rounds_up_once() -> None:
    table = price_table(None, {})
    price = table.price("claude-sonnet-4-5")
    usage = Usage(input=1000, output=2000, cache_write=4000, cache_read=10000)
    assert price.cost_milli(usage) == 5100  # 5.1 quota
    assert price.cost_milli(Usage(input=1)) == 1  # 0.3 milli rounds up
    assert table.price("claude-opus-4-5-x").input == 500_000  # longest pattern wins
    assert table.price("unknown").output == 1_500_000
    assert price.hold_milli(100, 1000) == -(-(100 * 375_000 + 1000 * 1_500_000) // 1_000_000)


def test_stream_usage_from_message_start_and_delta_is_not_double_counted() -> None:
    usage = Usage()
    ANTHROPIC.usage_from_event({"type": "message_start", "message": {"usage": {
        "input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 7}}}, usage)
    ANTHROPIC.usage_from_event({"type": "message_delta", "usage": {"output_tokens": 30}}, usage)
    ANTHROPIC.usage_from_event({"type": "message_delta", "usage": {"output_tokens": 42}}, usage)
    assert (usage.input, usage.output, usage.cache_read, usage.cache_write) == (10, 42, 7, 0)
    openai_usage = Usage()
    openai_usage.merge({"prompt_tokens": 100, "completion_tokens": 5,
                        "prompt_tokens_details": {"cached_tokens": 60}})
    assert (openai_usage.input, openai_usage.cache_read, openai_usage.output) == (40, 60, 5)


def _pool() -> LlmAccounts:
    return LlmAccounts([
        LlmAccount("a", "anthropic", "http://a", "sk-secret", ("claude-*",), 0,
                   {"sonnet": "claude-s"}),
        LlmAccount("b", "anthropic", "http://b", "k", ("claude-*",), 0),
        LlmAccount("c", "anthropic", "http://c", "k", ("*",), 5),
        LlmAccount("o", "openai", "http://o", "k", ("gpt-*",), 0),
    ])


def test_pool_orders_by_priority_rotates_and_cools_down() -> None:
    pool = _pool()
    first = [c.account.name for c in pool.candidates("anthropic", "claude-x", 0)]
    second = [c.account.name for c in pool.candidates("anthropic", "claude-x", 0)]
    assert sorted(first[:2]) == ["a", "b"] and first[2] == "c" and first[:2] != second[:2]
    assert [(c.account.name, c.model) for c in pool.candidates("anthropic", "sonnet", 0)] == [
        ("a", "claude-s"), ("c", "sonnet")]
    pool.cool_down("a", 100.0)
    pool.cool_down("b", 50.0)
    assert [c.account.name for c in pool.candidates("anthropic", "claude-x", 10)] == \
        ["c", "b", "a"]  # cooling accounts stay, last, soonest first
    assert pool.candidates("openai", "claude-x", 0) == []
    assert pool.model_ids("anthropic") == ["sonnet"]
    assert "sk-secret" not in repr(pool.accounts[0])


def test_retry_after_and_sse_splitting() -> None:
    assert retry_after_seconds("7", 1) == 7 and retry_after_seconds("soon", 3) == 3
    split = EventSplitter()
    assert list(split.feed(b"event: a\ndata: 1\n\nevent: b\nda")) == [b"event: a\ndata: 1\n\n"]
    assert list(split.feed(b"ta: 2\r\n\r\n")) == [b"event: b\ndata: 2\n\n"]
    assert split.pending == b""
