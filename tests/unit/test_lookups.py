"""Lookups that arrive together share one query; errors reach every waiter."""

from __future__ import annotations

import asyncio

import pytest

from gengate.lookups import BatchedLookup


async def test_concurrent_gets_share_one_query() -> None:
    calls: list[list[str]] = []

    async def fetch_many(keys: list[str]) -> dict[str, int]:
        calls.append(sorted(keys))
        return {k: len(k) for k in keys if k != "missing"}

    lookup = BatchedLookup(fetch_many)
    results = await asyncio.gather(*(lookup.get(k) for k in ["a", "bb", "a", "missing"]))
    assert results == [1, 2, 1, None]
    assert calls == [["a", "bb", "missing"]]
    assert await lookup.get("ccc") == 3
    assert len(calls) == 2


async def test_a_failed_query_fails_every_waiter() -> None:
    async def fetch_many(keys: list[str]) -> dict[str, int]:
        raise RuntimeError("database went away")

    lookup = BatchedLookup(fetch_many)
    results = await asyncio.gather(lookup.get("a"), lookup.get("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(RuntimeError):
        await lookup.get("c")

