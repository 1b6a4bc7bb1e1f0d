"""Midjourney prompt checks: grammar, parameters, versions, and a banned-words filter.

:func:`parse_prompt` splits a prompt into leading image URLs, text and typed parameters and
refuses what Midjourney would refuse, with the contract's ``[Invalid parameter] ...`` messages.
:class:`WordFilter` refuses banned words with ``[Banned prompt detected] ...``.
:func:`check_prompt` does both. The parameter table lives in :mod:`.params`, the word
filter in :mod:`.filter`.

Pure: no I/O except reading the packaged word list. :func:`check_prompt` runs on every submitted
prompt, so the common case (no URL, no braces, no dashes) takes fast paths, the per-version
tables are computed once, and checked parameter lists (``--ar 16:9 --v 6.1``) are cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import NamedTuple

from gengate.products.midjourney.prompt.filter import WordFilter
from gengate.products.midjourney.prompt.params import (
    ALIASES_LONGEST_FIRST,
    BY_ALIAS,
    BY_NAME,
    CONFLICT_GROUP,
    MODES,
    NEEDS,
    ORDER,
    BadValue,
    Param,
    ParamSpec,
    Version,
    error,
    invalid_value,
    lookup,
    normalize_version,
    shown,
    url_of,
    version_of,
)

__all__ = [
    "ILLEGAL_PREFIXES",
    "PROMPT_CHECK_OK",
    "Param",
    "ParsedPrompt",
    "PromptRules",
    "WordFilter",
    "check_prompt",
    "is_illegal_prompt_failure",
    "parse_prompt",
]

PROMPT_CHECK_OK = "Prompt verification successful."

ILLEGAL_PREFIXES: tuple[str, ...] = (
    "[Invalid parameter]",
    "[Banned prompt detected]",
    "[Image denied]",
    "[Invalid link]",
    "[Invalid prompt]",
    "[TTAPI prompt filter]",
    "[TTAPI image filter]",
)
# Midjourney itself writes "[Invalid link!] ..."; it is the same failure.
_ILLEGAL_STARTS = (*ILLEGAL_PREFIXES, "[Invalid link!]")


def is_illegal_prompt_failure(message: str | None) -> bool:
    """Whether a job failure ``message`` counts as an illegal prompt (contract 2.12)."""
    return isinstance(message, str) and message.lstrip().startswith(_ILLEGAL_STARTS)


# -- rules and result ------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptRules:
    """Which model versions the gateway accepts.

    ``versions`` are the ``--v`` values, ``niji_versions`` the ``--niji`` values, both normalized
    (``"6.0"`` is ``"6"``). ``default_version`` applies when a prompt names none.
    ``max_permutations`` caps how many prompts one ``{a, b}`` permutation prompt may expand to,
    ``max_expanded_chars`` how many characters they may hold together (each is checked).
    """

    versions: tuple[str, ...] = ("5", "5.1", "5.2", "6", "6.1", "7")
    niji_versions: tuple[str, ...] = ("5", "6")
    default_version: str = "7"
    max_permutations: int = 40
    max_expanded_chars: int = 24_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", _normalized(self.versions))
        object.__setattr__(self, "niji_versions", _normalized(self.niji_versions))
        default = normalize_version(self.default_version)
        if default not in self.versions:
            raise ValueError(f"default_version {self.default_version!r} is not in versions")
        object.__setattr__(self, "default_version", default)
        if self.max_permutations < 1:
            raise ValueError("max_permutations must be at least 1")


def _normalized(versions: Iterable[str]) -> tuple[str, ...]:
    out = []
    for text in versions:
        number = normalize_version(str(text))
        if number is None:
            raise ValueError(f"not a version number: {text!r}")
        out.append(number)
    return tuple(out)


DEFAULT_RULES = PromptRules()


@dataclass(frozen=True)
class ParsedPrompt:
    """A checked prompt.

    ``version`` is ``"7"``, ``"6.1"`` or ``"niji 6"`` (the default when the prompt names none);
    ``aspect`` defaults to ``(1, 1)``; ``mode`` is ``"fast"``, ``"relax"`` or ``"turbo"`` when the
    prompt carries that flag, else None. ``params`` are in canonical order. ``canonical`` is the
    prompt re-rendered: image URLs, text, then parameters in canonical spelling.

    For a permutation prompt (``a {red, blue} bird``) ``permutations`` holds every expanded prompt,
    parsed; the other fields describe the first one, and ``canonical`` is the original prompt
    with whitespace normalized (braces kept, so the upstream expands it).
    """

    image_urls: tuple[str, ...]
    text: str
    params: tuple[Param, ...]
    version: str
    aspect: tuple[int, int]
    seed: int | None
    mode: str | None
    canonical: str
    permutations: tuple[ParsedPrompt, ...] = field(default=())

    def get(self, name: str, default: object = None) -> object:
        """The value of parameter ``name`` (any alias, dashes optional), or ``default``."""
        spec = lookup(name)
        key = spec.name if spec else name
        for param in self.params:
            if param.name == key:
                return param.value
        return default

    def has(self, name: str) -> bool:
        """Whether the prompt carries parameter ``name`` (any alias, dashes optional)."""
        return self.get(name, _MISSING) is not _MISSING

    def render(self, exclude: Iterable[str] = ()) -> str:
        """The canonical prompt without the parameters named in ``exclude``.

        ``render(exclude=("fast", "relax", "turbo"))`` strips the speed flags, for example.
        """
        names = {spec.name for spec in map(lookup, exclude) if spec is not None}
        if self.permutations:
            return _drop_params(self.canonical, names)
        kept = tuple(p for p in self.params if p.name not in names)
        return _render(self.image_urls, self.text, kept)


_MISSING = object()


def _render(urls: tuple[str, ...], text: str, params: tuple[Param, ...]) -> str:
    parts = [*urls, text, *(BY_NAME[p.name].render(p.value) for p in params)]
    return " ".join(part for part in parts if part)


def _drop_params(text: str, names: set[str]) -> str:
    out: list[str] = []
    skipping, depth = False, 0
    for token in text.split():
        if depth == 0 and token.startswith("--"):
            spec = lookup(token)
            skipping = spec is not None and spec.name in names
        if not skipping:
            out.append(token)
        depth += token.count("{") - token.count("}")
    return " ".join(out)


# -- parsing ---------------------------------------------------------------------------------
_DASH_RE = re.compile(r"(?:(?<= )|^)[\u2014\u2013](?=[A-Za-z])")


def _normalize(prompt: str) -> str:
    """Whitespace collapsed to single spaces; a dash (em or en) that opens a word becomes ``--``."""
    text = " ".join(prompt.split())
    if "\u2014" in text or "\u2013" in text:
        return _DASH_RE.sub("--", text)
    return text


def parse_prompt(prompt: str, rules: PromptRules | None = None) -> ParsedPrompt:
    """Parse and check a Midjourney prompt.

    Raises :class:`~gengate.errors.InvalidParameter` (message ``[Invalid parameter] ...``) for
    anything Midjourney would refuse, and nothing else.
    """
    rules = rules or DEFAULT_RULES
    text = _normalize(prompt if isinstance(prompt, str) else "")
    if "{" not in text and "}" not in text:
        return _parse_plain(text, rules)
    expanded = _expand(text, rules.max_permutations)
    if sum(map(len, expanded)) > rules.max_expanded_chars:
        raise error(f"Permutations expand to more than {rules.max_expanded_chars} characters")
    variants = tuple(
        _parse_plain(_normalize(variant.replace("\\,", ",")), rules) for variant in expanded
    )
    return replace(variants[0], canonical=text, permutations=variants)


_Entry = tuple[ParamSpec, str, str]  # the spec, the name as written, the value as written


class _Params(NamedTuple):
    """The checked parameters of a prompt and what follows from them."""

    version: str
    params: tuple[Param, ...]
    rendered: str  # the parameters in canonical spelling, "" when none
    aspect: tuple[int, int]
    seed: int | None
    mode: str | None


def _parse_plain(text: str, rules: PromptRules) -> ParsedPrompt:
    """Parse a normalized prompt (single spaces) without permutation braces."""
    head, tail = _split_tail(text)
    urls, body = _split_head(head)
    if not tail:
        found = _no_params(rules.default_version)
    elif len(tail) <= _CACHED_TAIL:
        found = _parse_tail_cached(tail, rules.versions, rules.niji_versions,
                                   rules.default_version)
    else:
        found = _parse_tail(tail, rules.versions, rules.niji_versions, rules.default_version)
    _check_body(body, urls)
    parts = [*urls, body, found.rendered] if urls else [body, found.rendered]
    return ParsedPrompt(
        image_urls=urls,
        text=body,
        params=found.params,
        version=found.version,
        aspect=found.aspect,
        seed=found.seed,
        mode=found.mode,
        canonical=" ".join(part for part in parts if part),
    )


def _split_tail(text: str) -> tuple[str, str]:
    """The head (image URLs and text) and the parameters (from the first ``--`` word on)."""
    if text.startswith("--"):
        return "", text
    head, found, tail = text.partition(" --")
    return head, "--" + tail if found else ""


def _split_head(head: str) -> tuple[tuple[str, ...], str]:
    """Leading image URLs, and the text after them."""
    if not head.startswith(("h", "H", "<")):  # the fast path: no URL
        return (), head
    tokens = head.split()
    urls: list[str] = []
    for index, token in enumerate(tokens):
        if not token.lower().lstrip("<").startswith(("http://", "https://")):
            return tuple(urls), " ".join(tokens[index:])
        url = url_of(token)
        if url is None:
            raise error(f"Invalid image URL: `{shown(token)}`")
        urls.append(url)
    return tuple(urls), ""


@lru_cache(maxsize=16)
def _no_params(default_version: str) -> _Params:
    return _Params(version_of("v", default_version)[0].label, (), "", (1, 1), None, None)


def _parse_tail(tail: str, versions: tuple[str, ...], niji_versions: tuple[str, ...],
                default_version: str) -> _Params:
    """Check the parameters (``--ar 16:9 --v 6``); every word that starts with ``--`` opens one."""
    entries = [_resolve(group) for group in tail[2:].split(" --")]
    _check_combinations(entries)
    version, available = _version_of(entries, versions, niji_versions, default_version)
    params = sorted((_build(entry, version, available) for entry in entries), key=_order)
    _check_requires(entries)
    values = {param.name: param.value for param in params}
    return _Params(
        version=version.label,
        params=tuple(params),
        rendered=" ".join(BY_NAME[p.name].render(p.value) for p in params),
        aspect=values.get("aspect", (1, 1)),  # type: ignore[arg-type]
        seed=values.get("seed"),  # type: ignore[arg-type]
        mode=next((mode for mode in MODES if mode in values), None),
    )


# Prompts tend to share their parameters (``--ar 16:9 --v 6.1``): the checked parameters are
# cached (results only; a refused tail is checked again each time). The objects are immutable.
_CACHED_TAIL = 160
_parse_tail_cached = lru_cache(maxsize=4096)(_parse_tail)


def _order(param: Param) -> int:
    return ORDER[param.name]


_GLUED = frozenset("0123456789:.-")


def _resolve(group: str) -> _Entry:
    """The spec of one parameter (``ar 16:9``, the leading ``--`` cut off)."""
    name, _, raw = group.partition(" ")
    written = "--" + name
    name = name.lower()
    spec = BY_ALIAS.get(name)
    if spec is not None:
        return spec, written, raw
    for alias in ALIASES_LONGEST_FIRST:
        if name.startswith(alias) and name[len(alias)] in _GLUED:
            raise error(f"Missing space in argument: `{shown(written)}`")
    raise error(f"Unrecognized argument: `{shown(written)}`")


def _check_combinations(entries: list[_Entry]) -> None:
    seen: set[str] = set()
    groups: dict[int, list[str]] = {}  # conflict group -> the names written, in order
    for spec, written, _ in entries:
        if spec.name in seen:
            raise error(f"Duplicate argument: `{shown(written)}`")
        seen.add(spec.name)
        if spec.name in CONFLICT_GROUP:
            groups.setdefault(CONFLICT_GROUP[spec.name], []).append(written)
    clashes = [group for group, names in groups.items() if len(names) > 1]
    if clashes:
        first, second = groups[min(clashes)][:2]
        raise error(f"Conflicting arguments: `{first}` and `{second}`")


def _check_requires(entries: list[_Entry]) -> None:
    names = {spec.name for spec, _, _ in entries}
    for spec, written, _ in entries:
        needs = NEEDS.get(spec.name)
        if needs is not None and names.isdisjoint(needs):
            raise error(f"Argument `{written}` requires `--{needs[0]}`")


def _version_of(entries: list[_Entry], versions: tuple[str, ...], niji_versions: tuple[str, ...],
                default_version: str) -> tuple[Version, frozenset[str]]:
    """The version a prompt asks for, and the names of the parameters that version has."""
    for spec, written, raw in entries:
        if spec.name not in ("version", "niji"):
            continue
        if not raw:
            raise error(f"Missing value for argument: `{written}`")
        family = "v" if spec.name == "version" else "niji"
        number = normalize_version(raw)
        if number is None or number not in (versions if family == "v" else niji_versions):
            raise invalid_value(written, raw)
        return version_of(family, number)
    return version_of("v", default_version)


def _build(entry: _Entry, version: Version, available: frozenset[str]) -> Param:
    spec, written, raw = entry
    if spec.name not in available:
        raise error(f"Argument `{shown(written)}` is not available in version `{version.label}`")
    if spec.arity == "flag":
        if raw:
            raise invalid_value(written, raw)
        return Param(spec.name, True, raw, written)
    if not raw and spec.arity != "optional":
        raise error(f"Missing value for argument: `{shown(written)}`")
    if spec.arity == "one" and " " in raw:
        raise invalid_value(written, raw)
    assert spec.parse is not None
    try:
        value = spec.parse(raw, version)
    except BadValue:
        raise invalid_value(written, raw) from None
    return Param(spec.name, value, raw, written)


_WEIGHT_AT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")


def _check_body(body: str, urls: tuple[str, ...]) -> None:
    if not body and len(urls) < 2:
        raise error("Prompt is empty")
    if "::" in body:
        _check_weights(body)


def _check_weights(body: str) -> None:
    """Multi-prompt weights (``hot:: dog::-0.5``) must add up to a positive number."""
    parts = body.split("::")
    texts, weights = [parts[0]], []
    for part in parts[1:]:
        match = _WEIGHT_AT.match(part)
        weights.append(float(match[0]) if match else None)
        texts.append(part[match.end():] if match else part)
    weights.append(None)
    counted = [1.0 if w is None else w for t, w in zip(texts, weights, strict=True)
               if t.strip() or w is not None]
    if counted and not sum(counted) > 0:
        raise error("The sum of all prompt weights must be positive")


# -- permutations ----------------------------------------------------------------------------
_MAX_DEPTH = 8


def _brace_groups(text: str) -> list[tuple[int, int]]:
    """Start and end index of each top-level ``{...}`` group; checks that braces balance."""
    groups: list[tuple[int, int]] = []
    depth = start = 0
    for index, char in enumerate(text):
        if char == "{":
            start = index if depth == 0 else start
            depth += 1
            if depth > _MAX_DEPTH:
                raise error("Permutation braces are nested too deeply")
        elif char == "}":
            if depth == 0:
                raise error("Unbalanced braces in permutation prompt")
            depth -= 1
            if depth == 0:
                groups.append((start, index))
    if depth:
        raise error("Unbalanced braces in permutation prompt")
    return groups


def _split_options(inner: str) -> list[str]:
    """The comma-separated options of one group (``\\,`` is a literal comma)."""
    options, depth, last = [], 0, 0
    for index, char in enumerate(inner):
        if char in "{}":
            depth += 1 if char == "{" else -1
        elif char == "," and depth == 0 and inner[index - 1 : index] != "\\":
            options.append(inner[last:index])
            last = index + 1
    options.append(inner[last:])
    return [option.strip() for option in options]


def _expand(text: str, cap: int) -> list[str]:
    """Every prompt a permutation prompt stands for, at most ``cap`` of them."""
    results, pos = [""], 0
    for start, end in _brace_groups(text):
        options: list[str] = []
        for option in _split_options(text[start + 1 : end]):
            options.extend(_expand(option, cap))
            if len(options) * len(results) > cap:
                raise error(f"Too many permutations (more than {cap})")
        literal = text[pos:start]
        results = [done + literal + option for done in results for option in options]
        pos = end + 1
    return [done + text[pos:] for done in results]


def check_prompt(prompt: str, rules: PromptRules | None = None,
                 word_filter: WordFilter | None = None) -> ParsedPrompt:
    """Parse ``prompt`` (:func:`parse_prompt`) and run the word filter on its text.

    Only the text is filtered, not image URLs or parameter values; for a permutation prompt,
    the text of every expansion. ``word_filter`` defaults to :meth:`WordFilter.default`.
    """
    parsed = parse_prompt(prompt, rules)
    word_filter = word_filter or WordFilter.default()
    for variant in parsed.permutations or (parsed,):
        word_filter.check(variant.text)
    return parsed
