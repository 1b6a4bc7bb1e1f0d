"""Midjourney prompt checks: grammar, parameters, versions, and a banned-words filter.

:func:`parse_prompt` splits a prompt into leading image URLs, text and typed parameters and
refuses what Midjourney would refuse, with the contract's ``[Invalid parameter] ...`` messages.
:class:`WordFilter` refuses banned words with ``[Banned prompt detected] ...``.
:func:`check_prompt` does both. The parameter table lives in :mod:`gengate.prompt_params`.

Pure: no I/O except reading the packaged word list.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import NamedTuple

from gengate.errors import BannedPrompt
from gengate.prompt_params import (
    ALIASES_LONGEST_FIRST,
    BY_ALIAS,
    BY_NAME,
    CONFLICTS,
    MODES,
    ORDER,
    REQUIRES,
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
    ``max_permutations`` caps how many prompts one ``{a, b}`` permutation prompt may expand to.
    """

    versions: tuple[str, ...] = ("5", "5.1", "5.2", "6", "6.1", "7")
    niji_versions: tuple[str, ...] = ("5", "6")
    default_version: str = "7"
    max_permutations: int = 40

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
    return _DASH_RE.sub("--", " ".join(prompt.split()))


def parse_prompt(prompt: str, rules: PromptRules | None = None) -> ParsedPrompt:
    """Parse and check a Midjourney prompt.

    Raises :class:`~gengate.errors.InvalidParameter` (message ``[Invalid parameter] ...``) for
    anything Midjourney would refuse, and nothing else.
    """
    rules = rules or DEFAULT_RULES
    text = _normalize(prompt if isinstance(prompt, str) else "")
    if "{" not in text and "}" not in text:
        return _parse_plain(text, rules)
    variants = tuple(
        _parse_plain(_normalize(variant.replace("\\,", ",")), rules)
        for variant in _expand(text, rules.max_permutations)
    )
    return replace(variants[0], canonical=text, permutations=variants)


class _Entry(NamedTuple):
    spec: ParamSpec
    written: str
    raw: str


def _parse_plain(text: str, rules: PromptRules) -> ParsedPrompt:
    head, groups = _split_params(text.split())
    urls, words = _split_head(head)
    entries = [_resolve(written, " ".join(values)) for written, values in groups]
    _check_combinations(entries)
    version = _version_of(entries, rules)
    params = tuple(sorted((_build(entry, version) for entry in entries),
                          key=lambda p: ORDER[p.name]))
    _check_requires(entries)
    body = " ".join(words)
    _check_body(body, urls)
    values = {p.name: p.value for p in params}
    return ParsedPrompt(
        image_urls=urls,
        text=body,
        params=params,
        version=version.label,
        aspect=values.get("aspect", (1, 1)),  # type: ignore[arg-type]
        seed=values.get("seed"),  # type: ignore[arg-type]
        mode=next((mode for mode in MODES if mode in values), None),
        canonical=_render(urls, body, params),
    )


def _split_params(tokens: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Split tokens into the head (URLs and text) and ``(--name, value tokens)`` groups."""
    groups: list[tuple[str, list[str]]] = []
    head: list[str] = []
    for token in tokens:
        if token.startswith("--"):
            groups.append((token, []))
        elif groups:
            groups[-1][1].append(token)
        else:
            head.append(token)
    return head, groups


def _split_head(head: list[str]) -> tuple[tuple[str, ...], list[str]]:
    urls: list[str] = []
    for index, token in enumerate(head):
        if not token.lower().lstrip("<").startswith(("http://", "https://")):
            return tuple(urls), head[index:]
        url = url_of(token)
        if url is None:
            raise error(f"Invalid image URL: `{shown(token)}`")
        urls.append(url)
    return tuple(urls), []


_GLUED = frozenset("0123456789:.-")


def _resolve(written: str, raw: str) -> _Entry:
    name = written[2:].lower()
    spec = BY_ALIAS.get(name)
    if spec is not None:
        return _Entry(spec, written, raw)
    for alias in ALIASES_LONGEST_FIRST:
        if name.startswith(alias) and name[len(alias)] in _GLUED:
            raise error(f"Missing space in argument: `{shown(written)}`")
    raise error(f"Unrecognized argument: `{shown(written)}`")


def _check_combinations(entries: list[_Entry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.spec.name in seen:
            raise error(f"Duplicate argument: `{shown(entry.written)}`")
        seen.add(entry.spec.name)
    for group in CONFLICTS:
        present = [entry.written for entry in entries if entry.spec.name in group]
        if len(present) > 1:
            raise error(f"Conflicting arguments: `{present[0]}` and `{present[1]}`")


def _check_requires(entries: list[_Entry]) -> None:
    names = {entry.spec.name for entry in entries}
    for entry in entries:
        for name, needs in REQUIRES:
            if entry.spec.name == name and names.isdisjoint(needs):
                raise error(f"Argument `{entry.written}` requires `--{needs[0]}`")


def _version_of(entries: list[_Entry], rules: PromptRules) -> Version:
    for entry in entries:
        if entry.spec.name not in ("version", "niji"):
            continue
        if not entry.raw:
            raise error(f"Missing value for argument: `{entry.written}`")
        family = "v" if entry.spec.name == "version" else "niji"
        allowed = rules.versions if family == "v" else rules.niji_versions
        number = normalize_version(entry.raw)
        if number is None or number not in allowed:
            raise invalid_value(entry.written, entry.raw)
        return Version(family, number)
    return Version("v", rules.default_version)


def _build(entry: _Entry, version: Version) -> Param:
    spec, written, raw = entry
    if not spec.available(version):
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


# -- banned words ----------------------------------------------------------------------------
_SEP = r"[._\-*'~+|,/:]"
_WORD_RE = re.compile(r"[a-z0-9@$]+(?:" + _SEP + r"[a-z0-9@$]+)*")
_SEP_RE = re.compile(_SEP)
_LETTER_RE = re.compile(r"[a-z]")
_DOUBLE_RE = re.compile(r"(.)\1+")
_LEET = str.maketrans("013457@$", "oieastas")
_LEET_L = str.maketrans("013457@$", "oleastas")
_MAX_SPELLED = 24  # longest spelled-out word ("n u d e") looked at


def _fold(text: str) -> str:
    """Lower case, accents and invisible format characters removed."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(
        char for char in decomposed
        if not unicodedata.combining(char) and unicodedata.category(char) != "Cf"
    ).lower()


def _collapse(word: str) -> str:
    """``nuuude`` -> ``nude`` (the index key of a word)."""
    return _DOUBLE_RE.sub(r"\1", word) if _DOUBLE_RE.search(word) else word


def _forms(token: str) -> tuple[str, list[str]]:
    """The main spelling of a token (separators removed, leetspeak decoded) and all spellings."""
    if token.isalpha():
        return token, [token]
    joined = _SEP_RE.sub("", token)
    bases = [joined, *_SEP_RE.split(token)] if joined != token else [joined]
    forms: list[str] = []
    for base in bases:
        forms.append(base)
        if not base.isalpha() and _LETTER_RE.search(base):
            forms.append(base.translate(_LEET))
            if "1" in base:
                forms.append(base.translate(_LEET_L))
    main = joined.translate(_LEET) if _LETTER_RE.search(joined) else joined
    return main, forms


def _plural(word: str) -> str:
    return "es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s"


def _word_pattern(word: str, plural: bool) -> re.Pattern[str]:
    """``boob`` -> ``b{1,}o{2,}b{1,}``: repeated letters match, fewer letters do not."""
    body = "".join(f"{re.escape(m[0][0])}{{{len(m[0])},}}" for m in re.finditer(r"(.)\1*", word))
    return re.compile(body + (f"(?:{_plural(word)}+)?" if plural else ""))


class _Term(NamedTuple):
    entry: str
    patterns: tuple[re.Pattern[str], ...]


class WordFilter:
    """A banned-words filter: whole words, any case, robust to simple obfuscation.

    ``n.u.d.e``, ``n-u-d-e``, ``n u d e``, ``nuuude``, ``nud3``, ``NUDES`` all match ``nude``;
    ``class``, ``Scunthorpe`` or ``therapist`` never match a word they merely contain.
    Entries may be phrases (``full frontal``); a plural ``s``/``es`` on the last word matches.
    """

    def __init__(self, entries: Iterable[str]):
        self._words: dict[str, list[_Term]] = {}  # collapsed word -> one-word terms
        self._phrases: dict[tuple[str, ...], list[_Term]] = {}  # collapsed words -> phrases
        self._heads: set[str] = set()  # collapsed first words of phrases
        self._entries: list[str] = []
        self._longest = 1
        for entry in entries:
            self._add(entry)

    def _add(self, entry: str) -> None:
        words = [_SEP_RE.sub("", w) for w in _WORD_RE.findall(_fold(entry))]
        if not words:
            return
        self._entries.append(entry.strip())
        self._longest = max(self._longest, len(words))
        patterns = tuple(_word_pattern(w, i == len(words) - 1) for i, w in enumerate(words))
        term = _Term(entry.strip().lower(), patterns)
        stem = tuple(_collapse(w) for w in words[:-1])
        for last in (words[-1], words[-1] + _plural(words[-1])):
            if stem:
                self._heads.add(stem[0])
                self._phrases.setdefault((*stem, _collapse(last)), []).append(term)
            else:
                self._words.setdefault(_collapse(last), []).append(term)

    @classmethod
    def from_text(cls, text: str) -> WordFilter:
        """A filter from a word list: one word or phrase per line, ``#`` starts a comment."""
        return cls(line.split("#", 1)[0].strip() for line in text.splitlines())

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WordFilter:
        """A filter from a word-list file (UTF-8, the format of :meth:`from_text`)."""
        with open(path, encoding="utf-8") as handle:
            return cls.from_text(handle.read())

    @classmethod
    def default(cls) -> WordFilter:
        """The filter built from the packaged ``gengate/data/banned_words.txt`` (cached)."""
        return _default_filter()

    @property
    def entries(self) -> tuple[str, ...]:
        """The words and phrases of the list, as written there."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, text: str) -> str | None:
        """The first banned entry found in ``text`` (as it is listed, lower case), or None."""
        mains: list[str] = []
        for token in _WORD_RE.findall(_fold(text)):
            main, forms = _forms(token)
            for form in forms:
                if (hit := self._word(form)) is not None:
                    return hit
            mains.append(main)
        return self._find_phrase(mains) or self._find_spelled(mains)

    def check(self, text: str) -> None:
        """Raise :class:`~gengate.errors.BannedPrompt` naming the entry if ``text`` has one."""
        hit = self.find(text)
        if hit is not None:
            raise BannedPrompt(
                "[Banned prompt detected] Sorry! Our AI moderator thinks this prompt is not "
                f"allowed (banned prompt words: [{hit}])"
            )

    def _word(self, word: str) -> str | None:
        for term in self._words.get(_collapse(word), ()):
            if term.patterns[0].fullmatch(word):
                return term.entry
        return None

    def _find_phrase(self, mains: list[str]) -> str | None:
        if not self._heads:
            return None
        keys = [_collapse(main) for main in mains]
        for start, head in enumerate(keys):
            if head not in self._heads:
                continue
            for size in range(2, self._longest + 1):
                for term in self._phrases.get(tuple(keys[start : start + size]), ()):
                    words = mains[start : start + size]
                    if all(p.fullmatch(w) for p, w in zip(term.patterns, words, strict=True)):
                        return term.entry
        return None

    def _find_spelled(self, mains: list[str]) -> str | None:
        """Words spelled out one letter at a time: ``n u d e``."""
        run: list[str] = []
        for main in [*mains, ""]:
            if len(main) == 1:
                run.append(main)
                continue
            for start in range(len(run) - 2):
                for end in range(start + 3, min(len(run), start + _MAX_SPELLED) + 1):
                    word = "".join(run[start:end])
                    if (hit := self._word(word) or self._word(word.translate(_LEET))):
                        return hit
            run = []
        return None


@cache
def _default_filter() -> WordFilter:
    source = resources.files("gengate").joinpath("data", "banned_words.txt")
    return WordFilter.from_text(source.read_text(encoding="utf-8"))


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
