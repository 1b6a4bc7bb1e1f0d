"""The banned-words filter used by :mod:`gengate.products.midjourney.prompt`.

:class:`WordFilter` refuses banned words with ``[Banned prompt detected] ...``. It runs on every
submitted prompt, so it is built for speed: a filter remembers the tokens it has found
harmless (no banned word, no first word of a banned phrase), and a text made only of those is
passed with one set check; otherwise :meth:`WordFilter.find` makes one pass over the tokens, a
word hit being a dict lookup, and looks for phrases and spelled-out words only when a token could
start one. The spellings of obfuscated tokens (separators, leetspeak) are cached. All caches are
bounded and only ever change how fast an answer comes, never the answer.

Pure: no I/O except reading the packaged word list.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import NamedTuple

from gengate.errors import BannedPrompt

__all__ = ["WordFilter"]

_SEP = r"[._\-*'~+|,/:]"
# A token: letters and digits, maybe joined by separators (``n.u.d.e``). The quantifiers are
# possessive (the same matches, found faster: a token never gives letters back).
_WORD_RE = re.compile(r"[a-z0-9@$]++(?:" + _SEP + r"[a-z0-9@$]++)*+")
_SEP_RE = re.compile(_SEP)
_LETTER_RE = re.compile(r"[a-z]")
_DOUBLE_RE = re.compile(r"(.)\1+")
_LEET = str.maketrans("013457@$", "oieastas")
_LEET_L = str.maketrans("013457@$", "oleastas")
_MAX_SPELLED = 24  # longest spelled-out word ("n u d e") looked at
_CACHED_TOKEN = 40  # only tokens up to this long are remembered
_CACHE_SIZE = 16384  # tokens remembered (per cache; about 1-2 MB each at most)


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


class _Token(NamedTuple):
    """A token's main spelling, its index key, and every ``(spelling, index key)`` to look up."""

    main: str
    key: str
    forms: tuple[tuple[str, str], ...]


def _analyze(token: str) -> _Token:
    main, forms = _forms(token)
    return _Token(main, _collapse(main), tuple((form, _collapse(form)) for form in forms))


# Token (other than plain letters) -> its spellings; emptied when it grows too big.
_TOKENS: dict[str, _Token] = {}


def _remember(token: str) -> _Token:
    found = _analyze(token)
    if len(token) <= _CACHED_TOKEN:
        if len(_TOKENS) >= _CACHE_SIZE:
            _TOKENS.clear()
        _TOKENS[token] = found
    return found


def _spelled_run(tokens: list[str]) -> bool:
    """Whether three one-letter tokens follow each other (a word spelled out, ``n u d e``)."""
    lengths = list(map(len, tokens))
    if lengths.count(1) < 3:
        return False
    run = 0
    for length in lengths:
        run = run + 1 if length == 1 else 0
        if run == 3:
            return True
    return False


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
        self._prefixes: set[str] = set()  # every prefix of a one-word term's index key
        self._entries: list[str] = []
        self._clean: set[str] = set()  # tokens seen that are no word, and start no phrase
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
                key = _collapse(last)
                self._words.setdefault(key, []).append(term)
                self._prefixes.update(key[:end] for end in range(1, len(key) + 1))

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
        tokens = _WORD_RE.findall(_fold(text))
        if self._clean.issuperset(tokens) and not _spelled_run(tokens):
            return None  # the fast path: every token is known to start no banned word or phrase
        return self._scan(tokens)

    def _scan(self, tokens: list[str]) -> str | None:
        words, heads, clean = self._words, self._heads, self._clean
        if len(clean) >= _CACHE_SIZE:
            clean.clear()
        mains: list[str] = []
        keys: list[str] = []
        for token in tokens:
            if token.isalpha():  # most tokens: one spelling, nothing to decode
                main, key = token, _collapse(token)
                forms: tuple[tuple[str, str], ...] = ((token, key),)
            else:
                main, key, forms = _TOKENS.get(token) or _remember(token)
            suspect = key in heads
            for form, form_key in forms:
                if form_key in words:
                    if (hit := self._match(form_key, form)) is not None:
                        return hit
                    suspect = True
            if not suspect and len(token) <= _CACHED_TOKEN:
                clean.add(token)
            mains.append(main)
            keys.append(key)
        if not heads.isdisjoint(keys):
            hit = self._find_phrase(mains, keys)
            if hit:
                return hit
        return self._find_spelled(mains) if _spelled_run(tokens) else None

    def check(self, text: str) -> None:
        """Raise :class:`~gengate.errors.BannedPrompt` naming the entry if ``text`` has one."""
        hit = self.find(text)
        if hit is not None:
            raise BannedPrompt(
                "[Banned prompt detected] Sorry! Our AI moderator thinks this prompt is not "
                f"allowed (banned prompt words: [{hit}])"
            )

    def _match(self, key: str, word: str) -> str | None:
        for term in self._words.get(key, ()):
            if term.patterns[0].fullmatch(word):
                return term.entry
        return None

    def _find_phrase(self, mains: list[str], keys: list[str]) -> str | None:
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
            if len(run) >= 3:
                hit = self._spelled_in(run)
                if hit:
                    return hit
            run = []
        return None

    def _spelled_in(self, run: list[str]) -> str | None:
        """The first word spelled by 3 to ``_MAX_SPELLED`` letters in a row of ``run``.

        Linear in ``len(run)``: from each letter the window grows one letter at a time and
        stops as soon as its index key starts no banned word (most windows stop at once).
        """
        decoded = [letter.translate(_LEET) for letter in run]
        spellings = (run, decoded) if decoded != run else (run,)
        words, prefixes = self._words, self._prefixes
        for start in range(len(run) - 2):
            for letters in spellings:
                key = last = ""
                listed = False
                for end in range(start, min(len(letters), start + _MAX_SPELLED)):
                    letter = letters[end]
                    if letter != last:
                        key += letter
                        last = letter
                        if key not in prefixes:
                            break
                        listed = key in words
                    if listed and end - start >= 2:
                        hit = self._match(key, "".join(letters[start : end + 1]))
                        if hit:
                            return hit
        return None


@cache
def _default_filter() -> WordFilter:
    source = resources.files("gengate").joinpath("data", "banned_words.txt")
    return WordFilter.from_text(source.read_text(encoding="utf-8"))
