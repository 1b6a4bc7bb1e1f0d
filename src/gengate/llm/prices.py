"""Where LLM prices come from: the shipped list of the providers' public prices
(``gengate/data/llm_prices.json``), or the operator's own file in the same format
(``GENGATE_LLM_PRICES_FILE``), with ``GENGATE_LLM_PRICES`` laid over either per pattern.

The file holds US dollars per million tokens (``quota_per_usd`` converts them); the
settings' overrides are quota per million tokens, as the table keeps them. An override
whose value is ``null`` removes that pattern: removing ``*`` leaves models no pattern
matches without a price, and their calls are refused (400) before any upstream is asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from gengate.errors import BadRequest
from gengate.llm.pricing import LlmPriceTable

__all__ = ["load_price_file", "price_table", "shipped_prices"]

_MONEY = ("input", "output", "cache_write", "cache_read", "cache_write_1h")


def _scaled(entry: Mapping[str, Any], factor: float) -> dict[str, Any]:
    out: dict[str, Any] = {k: v * factor if k in _MONEY and isinstance(v, int | float) else v
                           for k, v in entry.items()}
    long = entry.get("long_context")
    if isinstance(long, Mapping):
        out["long_context"] = _scaled(long, factor)
    return out


def parse_price_file(raw: bytes, where: str) -> dict[str, dict[str, Any]]:
    """A price file's models in quota per million tokens."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{where}: invalid JSON ({exc.msg})") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    factor = doc.get("quota_per_usd", 100) if isinstance(doc, dict) else None
    if not isinstance(models, dict) or not isinstance(factor, int | float) or factor <= 0:
        raise BadRequest(f"{where}: needs a 'models' object and a positive 'quota_per_usd'")
    out = {}
    for pattern, entry in models.items():
        if not isinstance(entry, dict):
            raise BadRequest(f"{where}: entry for {pattern!r} must be an object")
        out[str(pattern)] = _scaled(entry, float(factor))
    return out


def shipped_prices() -> dict[str, dict[str, Any]]:
    raw = resources.files("gengate").joinpath("data/llm_prices.json").read_bytes()
    return parse_price_file(raw, "gengate/data/llm_prices.json")


def load_price_file(path: str | None) -> dict[str, dict[str, Any]]:
    """The operator's file when one is set, else the shipped one."""
    if not path:
        return shipped_prices()
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BadRequest(f"llm_prices_file: cannot read {path}: {exc.strerror}") from None
    return parse_price_file(raw, path)


def price_table(path: str | None,
                overrides: Mapping[str, Mapping[str, Any] | None]) -> LlmPriceTable:
    """The table the settings describe: the file's prices, the overrides laid over them
    per pattern and field (``null`` removes a pattern)."""
    prices = load_price_file(path)
    for pattern, entry in overrides.items():
        if entry is None:
            prices.pop(pattern, None)
        else:
            prices[pattern] = {**prices.get(pattern, {}), **entry}
    return LlmPriceTable(prices)
