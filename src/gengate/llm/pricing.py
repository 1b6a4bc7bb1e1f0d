"""Token prices and the arithmetic of LLM holds and charges. Pure.

Prices are quota per million tokens for the token classes: input, output, cache writes
(``cache_creation_input_tokens``; 5-minute, and 1-hour ones apart where the upstream
reports them) and cache reads (``cache_read_input_tokens``), with an optional
long-context tier whose rates apply to every token of a call whose prompt is above its
threshold. Internally they are kept as integer milli-quota per million tokens, so every
charge is exact integer arithmetic rounded up once. Where the prices come from:
:mod:`gengate.llm.prices`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gengate.errors import BadRequest
from gengate.quota import to_milli

__all__ = ["LlmPriceTable", "ModelPrice", "Usage"]

_PER = 1_000_000

@dataclass(slots=True)
class Usage:
    """Tokens one call used, as the upstream reported them."""

    input: int = 0
    output: int = 0
    cache_write: int = 0  # all cache writes, 1-hour ones included
    cache_read: int = 0
    cache_write_1h: int = 0  # of cache_write, the 1-hour ones

    @property
    def prompt(self) -> int:
        return self.input + self.cache_write + self.cache_read

    def merge(self, usage: Mapping[str, object]) -> None:
        """Take the counts present in an Anthropic or OpenAI ``usage`` object.

        A count that appears again replaces the earlier one (a stream's ``message_delta``
        carries cumulative counts), so nothing is counted twice.
        """
        for key, attr in _FIELDS:
            value = usage.get(key)
            if isinstance(value, int) and value >= 0:
                setattr(self, attr, value)
        split = usage.get("cache_creation")
        if isinstance(split, Mapping) and isinstance(split.get("ephemeral_1h_input_tokens"),
                                                     int):
            self.cache_write_1h = max(0, int(split["ephemeral_1h_input_tokens"]))
        details = usage.get("prompt_tokens_details")
        if isinstance(details, Mapping) and isinstance(details.get("cached_tokens"), int):
            # OpenAI counts cached tokens inside prompt_tokens; bill them apart
            cached = int(details["cached_tokens"])
            self.cache_read = cached
            self.input = max(0, self.input - cached)


_FIELDS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_creation_input_tokens", "cache_write"),
    ("cache_read_input_tokens", "cache_read"),
    ("prompt_tokens", "input"),
    ("completion_tokens", "output"),
)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Milli-quota per million tokens of each class; ``long`` is (threshold, the rates of a
    call whose prompt is above it)."""

    input: int
    output: int
    cache_write: int
    cache_read: int
    cache_write_1h: int = -1  # -1: as cache_write
    long: tuple[int, ModelPrice] | None = None

    def cost_milli(self, usage: Usage) -> int:
        """The exact charge for ``usage``, rounded up to a whole milli-quota."""
        rates = self.long[1] if self.long is not None and usage.prompt > self.long[0] else self
        hour = min(usage.cache_write_1h, usage.cache_write)
        write_1h = rates.cache_write_1h if rates.cache_write_1h >= 0 else rates.cache_write
        total = (usage.input * rates.input + usage.output * rates.output
                 + (usage.cache_write - hour) * rates.cache_write + hour * write_1h
                 + usage.cache_read * rates.cache_read)
        return -(-total // _PER)

    def hold_milli(self, input_estimate: int, max_tokens: int) -> int:
        """An estimate of the dearest case: every input token at the dearest input rate, plus
        max_tokens. The settlement charges what the upstream reports, above it or not."""
        dearest = max(self.input, self.cache_write, self.cache_read)
        return -(-(input_estimate * dearest + max_tokens * self.output) // _PER)


_CLASSES = ("input", "output", "cache_write", "cache_read", "cache_write_1h")


def _rates(pattern: str, entry: Mapping[str, Any]) -> ModelPrice:
    """One entry's rates; cache writes and reads default to the input rate."""
    try:
        given = {k: to_milli(float(entry[k])) for k in _CLASSES if entry.get(k) is not None}
        given.setdefault("cache_write", given["input"])
        given.setdefault("cache_read", given["input"])
        given.setdefault("cache_write_1h", given["cache_write"])
        price = ModelPrice(given["input"], given["output"], given["cache_write"],
                           given["cache_read"], given["cache_write_1h"])
    except (KeyError, TypeError, ValueError):
        raise BadRequest(f"llm_prices: bad entry for {pattern!r} (input and output are "
                         "required numbers)") from None
    if min(given.values()) < 0:
        raise BadRequest(f"llm_prices: negative price for {pattern!r}")
    return price


def parse_price(pattern: str, entry: Mapping[str, Any]) -> ModelPrice:
    """A price from its JSON entry: quota per million tokens per class, and optionally
    ``long_context``: ``{"above": tokens, <the same classes>}``."""
    if not isinstance(entry, Mapping):
        raise BadRequest(f"llm_prices: entry for {pattern!r} must be an object")
    price = _rates(pattern, entry)
    long = entry.get("long_context")
    if long is None:
        return price
    above = long.get("above") if isinstance(long, Mapping) else None
    if type(above) is not int or above < 0:
        raise BadRequest(f"llm_prices: {pattern!r}: long_context needs a whole 'above'")
    return ModelPrice(price.input, price.output, price.cache_write, price.cache_read,
                      price.cache_write_1h, (above, _rates(pattern, long)))


class LlmPriceTable:
    """Looks up a model's price; the longest matching pattern wins. A model no pattern
    matches has no price: its calls are refused (400) before any upstream is asked."""

    def __init__(self, prices: Mapping[str, Mapping[str, Any]]):
        self._prices = [(pattern, parse_price(pattern, entry))
                        for pattern, entry in prices.items()]
        self._prices.sort(key=lambda item: len(item[0]), reverse=True)
        self._cache: dict[str, ModelPrice] = {}

    def price(self, model: str) -> ModelPrice:
        found = self._cache.get(model)
        if found is not None:
            return found
        for pattern, price in self._prices:
            if fnmatch.fnmatchcase(model, pattern):
                self._cache[model] = price
                return price
        raise BadRequest(f"no LLM price configured for model {model}")
