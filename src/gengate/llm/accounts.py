"""Upstream LLM accounts and the ordering of them for each call. Pure.

An account speaks one protocol (``anthropic`` or ``openai``), serves the models its
patterns match (or its aliases name), and has a priority: lower numbers are tried first,
accounts of equal priority take turns. An account that answered 429/529 or kept failing
is cooled down until a time; cooled-down accounts go to the back of the order rather than
out of it, so a set whose every account is cooling down still tries the one that recovers
first instead of refusing outright.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gengate.errors import BadRequest

__all__ = ["KINDS", "LlmAccounts", "LlmAccount", "Candidate"]

KINDS = ("anthropic", "openai")


@dataclass(frozen=True)
class LlmAccount:
    """One upstream: a base URL and its key (configuration only, never shown)."""

    name: str
    kind: str
    base_url: str
    api_key: str = field(repr=False)
    models: tuple[str, ...] = ("*",)
    priority: int = 0
    aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> LlmAccount:
        try:
            name, kind = str(raw["name"]), str(raw.get("kind", "anthropic"))
            base_url = str(raw["base_url"]).rstrip("/")
            api_key = str(raw.get("api_key", ""))
        except KeyError as exc:
            raise BadRequest(f"llm_accounts: missing {exc.args[0]}") from None
        if kind not in KINDS:
            raise BadRequest(f"llm_accounts: {name}: kind must be one of {', '.join(KINDS)}")
        models = raw.get("models") or ["*"]
        aliases = raw.get("aliases") or {}
        if not isinstance(models, list) or not isinstance(aliases, dict):
            raise BadRequest(f"llm_accounts: {name}: models is a list, aliases an object")
        return cls(name, kind, base_url, api_key, tuple(str(m) for m in models),
                   int(raw.get("priority", 0)), {str(k): str(v) for k, v in aliases.items()})

    def upstream_model(self, model: str) -> str | None:
        """The model name to send upstream for ``model``, or None if not served here."""
        mapped = self.aliases.get(model)
        if mapped is not None:
            return mapped
        if any(fnmatch.fnmatchcase(model, p) for p in self.models):
            return model
        return None


@dataclass(frozen=True, slots=True)
class Candidate:
    account: LlmAccount
    model: str  # the upstream's model name


class LlmAccounts:
    """Orders the accounts that can serve a model and remembers cooldowns."""

    def __init__(self, accounts: Iterable[LlmAccount]):
        self.accounts = list(accounts)
        names = [a.name for a in self.accounts]
        if len(set(names)) != len(names):
            raise BadRequest("llm_accounts: account names must be unique")
        self._cool: dict[str, float] = {}
        self._turn = itertools.count()

    def candidates(self, kind: str, model: str, now: float) -> list[Candidate]:
        """Accounts of ``kind`` serving ``model``: ready ones by priority (equal priorities
        rotated), then cooling ones by when they recover."""
        found = [(a, m) for a in self.accounts if a.kind == kind
                 and (m := a.upstream_model(model)) is not None]
        if not found:
            return []
        shift = next(self._turn)
        ready = [(a, m) for a, m in found if self._cool.get(a.name, 0.0) <= now]
        cooling = sorted((x for x in found if self._cool.get(x[0].name, 0.0) > now),
                         key=lambda x: self._cool[x[0].name])
        ordered: list[Candidate] = []
        for _, group in itertools.groupby(sorted(ready, key=lambda x: x[0].priority),
                                          key=lambda x: x[0].priority):
            items = list(group)
            k = shift % len(items)
            ordered += [Candidate(a, m) for a, m in items[k:] + items[:k]]
        return ordered + [Candidate(a, m) for a, m in cooling]

    def cool_down(self, name: str, until: float) -> None:
        self._cool[name] = max(self._cool.get(name, 0.0), until)

    def recover(self, name: str) -> None:
        self._cool.pop(name, None)

    def cooling_until(self, name: str) -> float:
        return self._cool.get(name, 0.0)

    def model_ids(self, kind: str | None = None) -> list[str]:
        """Model names clients can ask for: aliases and patterns without wildcards."""
        out: dict[str, None] = {}
        for account in self.accounts:
            if kind is not None and account.kind != kind:
                continue
            for name in itertools.chain(account.aliases, account.models):
                if not any(ch in name for ch in "*?["):
                    out[name] = None
        return list(out)


def retry_after_seconds(value: str | None, default: float, cap: float = 600.0) -> float:
    """Seconds from a ``Retry-After`` header (delta seconds; HTTP dates fall back)."""
    if value:
        try:
            return min(cap, max(0.0, float(value)))
        except ValueError:
            pass
    return default
