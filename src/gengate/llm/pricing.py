"""Token prices and the arithmetic of LLM holds and charges. Pure.

Prices are quota per million tokens for four token classes: input, output, cache writes
(``cache_creation_input_tokens``) and cache reads (``cache_read_input_tokens``). Internally
they are kept as integer milli-quota per million tokens, so every charge is exact integer
arithmetic rounded up once.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from gengate.errors import BadRequest
from gengate.quota import to_milli

__all__ = ["DEFAULT_LLM_PRICES", "LlmPriceTable", "ModelPrice", "Usage"]

_PER = 1_000_000

#: model pattern -> quota per million tokens (1 USD = 100 quota); the longest matching
#: pattern wins, "*" is the fallback for models not listed
DEFAULT_LLM_PRICES: dict[str, dict[str, float]] = {
    "*": {"input": 300, "output": 1500, "cache_write": 375, "cache_read": 30},
    "claude-opus-*": {"input": 1500, "output": 7500, "cache_write": 1875, "cache_read": 150},
    "claude-opus-4-5*": {"input": 500, "output": 2500, "cache_write": 625, "cache_read": 50},
    "claude-sonnet-*": {"input": 300, "output": 1500, "cache_write": 375, "cache_read": 30},
    "claude-haiku-*": {"input": 100, "output": 500, "cache_write": 125, "cache_read": 10},
    "claude-3-5-haiku*": {"input": 80, "output": 400, "cache_write": 100, "cache_read": 8},
    "gpt-4o*": {"input": 250, "output": 1000, "cache_write": 250, "cache_read": 125},
    "gpt-4o-mini*": {"input": 15, "output": 60, "cache_write": 15, "cache_read": 7.5},
}


@dataclass(slots=True)
class Usage:
    """Tokens one call used, as the upstream reported them."""

    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0

    def merge(self, usage: Mapping[str, object]) -> None:
        """Take the counts present in an Anthropic or OpenAI ``usage`` object.

        A count that appears again replaces the earlier one (a stream's ``message_delta``
        carries cumulative counts), so nothing is counted twice.
        """
        for key, attr in _FIELDS:
            value = usage.get(key)
            if isinstance(value, int) and value >= 0:
                setattr(self, attr, value)
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
    """Milli-quota per million tokens of each class."""

    input: int
    output: int
    cache_write: int
    cache_read: int

    def cost_milli(self, usage: Usage) -> int:
        """The exact charge for ``usage``, rounded up to a whole milli-quota."""
        total = (usage.input * self.input + usage.output * self.output
                 + usage.cache_write * self.cache_write + usage.cache_read * self.cache_read)
        return -(-total // _PER)

    def hold_milli(self, input_estimate: int, max_tokens: int) -> int:
        """The worst case: every input token at the dearest input rate, plus max_tokens."""
        dearest = max(self.input, self.cache_write, self.cache_read)
        return -(-(input_estimate * dearest + max_tokens * self.output) // _PER)


class LlmPriceTable:
    """Looks up a model's price; the longest matching pattern wins."""

    def __init__(self, prices: Mapping[str, Mapping[str, float]]):
        self._prices: list[tuple[str, ModelPrice]] = []
        for pattern, entry in prices.items():
            try:
                price = ModelPrice(*(to_milli(float(entry[k])) for k in
                                     ("input", "output", "cache_write", "cache_read")))
            except (KeyError, TypeError, ValueError):
                raise BadRequest(f"llm_prices: bad entry for {pattern!r}") from None
            if min(price.input, price.output, price.cache_write, price.cache_read) < 0:
                raise BadRequest(f"llm_prices: negative price for {pattern!r}")
            self._prices.append((pattern, price))
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


def merged_prices(overrides: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """The defaults with ``overrides`` laid over them, per model and per field."""
    out = {k: dict(v) for k, v in DEFAULT_LLM_PRICES.items()}
    for pattern, entry in overrides.items():
        out[pattern] = {**out.get(pattern, DEFAULT_LLM_PRICES["*"]), **entry}
    return out
