"""The Midjourney parameter table used by :mod:`gengate.products.midjourney.prompt`.

Each :class:`ParamSpec` names one parameter: its canonical name, the spellings users may write,
how many value tokens it takes, how its value is parsed and rendered, and in which model versions
it exists. Value parsers raise :class:`BadValue`; the prompt parser turns that into the contract's
``[Invalid parameter] Invalid value for argument: ...`` message. Pure data and pure functions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

from gengate.errors import InvalidParameter

__all__ = [
    "ALL",
    "PREFIX",
    "SPECS",
    "BadValue",
    "Param",
    "ParamSpec",
    "Version",
    "error",
    "fmt_number",
    "invalid_value",
    "lookup",
    "normalize_version",
]

PREFIX = "[Invalid parameter]"
_SHOWN = 200  # user text echoed in an error message is cut to this many characters

Ranges = tuple[tuple[float, float], ...]
ALL: Ranges = ((0.0, math.inf),)
NONE: Ranges = ()


class BadValue(ValueError):
    """A parameter value that does not fit the parameter's rules."""


def error(detail: str) -> InvalidParameter:
    """An :class:`InvalidParameter` whose message is ``[Invalid parameter] <detail>``."""
    return InvalidParameter(f"{PREFIX} {detail}")


def shown(text: str) -> str:
    """``text`` cut to a length that is safe to echo in an error message."""
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def invalid_value(written: str, raw: str) -> InvalidParameter:
    """The contract's error for a bad value, e.g. ``Invalid value for argument: `--v`:`8```."""
    return error(f"Invalid value for argument: `{shown(written)}`:`{shown(raw)}`")


@dataclass(frozen=True, slots=True)
class Version:
    """A model version: ``family`` is ``"v"`` or ``"niji"``; ``number`` is normalized, e.g. 6.1."""

    family: str
    number: str

    @property
    def key(self) -> float:
        """The number as a float, for range comparisons."""
        return float(self.number)

    @property
    def label(self) -> str:
        """``"6.1"`` for a v version, ``"niji 6"`` for a niji one."""
        return self.number if self.family == "v" else f"niji {self.number}"


_VERSION_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3})?")


def normalize_version(text: str) -> str | None:
    """``"6.0"`` -> ``"6"``, ``"5.20"`` -> ``"5.2"``; None when ``text`` is not a version number."""
    if not _VERSION_RE.fullmatch(text):
        return None
    major, _, minor = text.partition(".")
    minor = minor.rstrip("0")
    return f"{int(major)}.{minor}" if minor else str(int(major))


@dataclass(frozen=True, slots=True)
class Param:
    """One parsed parameter.

    ``name`` is the canonical long name without dashes (``"aspect"``), ``value`` the typed value
    (int, float, str, bool or tuple), ``raw`` the value as written and ``written`` the parameter
    name as written (``"--ar"``). ``raw`` and ``written`` do not take part in equality.
    """

    name: str
    value: object
    raw: str = field(default="", compare=False)
    written: str = field(default="", compare=False)


ValueParser = Callable[[str, Version], object]


def _render_plain(value: object) -> str:
    if isinstance(value, tuple):
        if len(value) == 2 and all(isinstance(v, int) for v in value):
            return f"{value[0]}:{value[1]}"
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return fmt_number(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """The rules of one parameter.

    ``arity`` is ``"flag"`` (no value), ``"one"`` (one token), ``"many"`` (one or more tokens) or
    ``"optional"`` (zero or more tokens). ``v`` and ``niji`` are the version ranges (inclusive)
    where the parameter exists. ``values`` describes the accepted values for the docs.
    """

    name: str
    aliases: tuple[str, ...]
    flag: str
    arity: str
    parse: ValueParser | None = None
    v: Ranges = ALL
    niji: Ranges = ALL
    values: str = ""

    def available(self, version: Version) -> bool:
        """Whether the parameter exists in ``version``."""
        ranges = self.v if version.family == "v" else self.niji
        return any(lo <= version.key <= hi for lo, hi in ranges)

    def render(self, value: object) -> str:
        """The parameter in canonical spelling, e.g. ``--ar 16:9`` or ``--tile``."""
        if self.arity == "flag" or value == ():
            return f"--{self.flag}"
        return f"--{self.flag} {_render_plain(value)}"


# -- number helpers --------------------------------------------------------------------------
_INT_RE = re.compile(r"[0-9]{1,12}")
_NUM_RE = re.compile(r"-?(?:[0-9]{1,7}(?:\.[0-9]{1,10})?|\.[0-9]{1,10})")


def fmt_number(x: float) -> str:
    """A number in plain decimal form: ``1.0`` -> ``"1"``, ``0.5`` -> ``"0.5"``, never ``1e-05``."""
    if x == 0:
        return "0"
    return f"{x:.10f}".rstrip("0").rstrip(".")


def _to_int(raw: str) -> int:
    # Same as _INT_RE.fullmatch(raw), faster: ASCII digits only, 1 to 12 of them.
    if not (raw.isdigit() and raw.isascii() and len(raw) <= 12):
        raise BadValue(raw)
    return int(raw)


def _to_float(raw: str) -> float:
    if not _NUM_RE.fullmatch(raw):
        raise BadValue(raw)
    return float(raw)


VersionTable = tuple[tuple[str, float, float, object], ...]


def _pick(table: VersionTable, version: Version) -> object:
    for family, lo, hi, value in table:
        if family == version.family and lo <= version.key <= hi:
            return value
    raise BadValue(version.label)


# -- value parsers ---------------------------------------------------------------------------
def int_range(lo: int, hi: int) -> ValueParser:
    """A parser for an integer in ``[lo, hi]``."""

    def parse(raw: str, version: Version) -> int:
        value = _to_int(raw)
        if not lo <= value <= hi:
            raise BadValue(raw)
        return value

    return parse


def _float_choice(table: VersionTable) -> ValueParser:
    def parse(raw: str, version: Version) -> float:
        value = _to_float(raw)
        if value not in _pick(table, version):  # type: ignore[operator]
            raise BadValue(raw)
        return value

    return parse


def _int_choice(table: VersionTable) -> ValueParser:
    def parse(raw: str, version: Version) -> int:
        value = _to_int(raw)
        if value not in _pick(table, version):  # type: ignore[operator]
            raise BadValue(raw)
        return value

    return parse


def _float_range(table: VersionTable) -> ValueParser:
    def parse(raw: str, version: Version) -> float:
        value = _to_float(raw)
        lo, hi = cast("tuple[float, float]", _pick(table, version))
        if not lo <= value <= hi:
            raise BadValue(raw)
        return value

    return parse


def _style(table: VersionTable) -> ValueParser:
    def parse(raw: str, version: Version) -> str:
        value = raw.lower()
        if value not in _pick(table, version):  # type: ignore[operator]
            raise BadValue(raw)
        return value

    return parse


_ASPECT_RE = re.compile(r"([0-9]{1,6}):([0-9]{1,6})")
MAX_RATIO = 14


def _aspect(raw: str, version: Version) -> tuple[int, int]:
    match = _ASPECT_RE.fullmatch(raw)
    if not match:
        raise BadValue(raw)
    width, height = int(match[1]), int(match[2])
    if width == 0 or height == 0 or max(width, height) > MAX_RATIO * min(width, height):
        raise BadValue(raw)
    return width, height


# Possessive: the host part never gives characters back, so a token that is no URL fails in
# one pass (a greedy split of the two runs would be tried at every position).
URL_RE = re.compile(r"<?+(https?://[^\s/?#<>]++[^\s<>]*+)>?", re.IGNORECASE)


def url_of(token: str) -> str | None:
    """The URL in ``token`` (angle brackets removed), or None when it is not an http(s) URL."""
    match = URL_RE.fullmatch(token)
    return match[1] if match else None


def _url_list(raw: str, version: Version) -> tuple[str, ...]:
    urls = tuple(url_of(token) for token in raw.split())
    if not urls or None in urls:
        raise BadValue(raw)
    return urls  # type: ignore[return-value]


def _url_one(raw: str, version: Version) -> str:
    url = url_of(raw)
    if url is None:
        raise BadValue(raw)
    return url


_WEIGHT_RE = re.compile(r"(.*?)(?:::(" + _NUM_RE.pattern + r"))?", re.DOTALL)
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_CODE = 4294967295


def _split_weight(token: str) -> tuple[str, str | None]:
    match = _WEIGHT_RE.fullmatch(token)
    assert match is not None  # the pattern matches any string
    return match[1], match[2]


def _with_weight(item: str, weight: str | None) -> str:
    return item if weight is None else f"{item}::{fmt_number(float(weight))}"


def _sref_item(token: str) -> str:
    item, weight = _split_weight(token)
    url = url_of(item)
    if url is not None:
        return _with_weight(url, weight)
    if item.lower() == "random":
        return _with_weight("random", weight)
    if _INT_RE.fullmatch(item) and int(item) <= MAX_CODE:
        return _with_weight(str(int(item)), weight)
    raise BadValue(token)


def _sref(raw: str, version: Version) -> tuple[str, ...]:
    items = tuple(_sref_item(token) for token in raw.split())
    if not items:
        raise BadValue(raw)
    return items


def _codes(raw: str, version: Version) -> tuple[str, ...]:
    codes = []
    for token in raw.split():
        item, weight = _split_weight(token)
        if not _CODE_RE.fullmatch(item):
            raise BadValue(token)
        codes.append(_with_weight(item, weight))
    return tuple(codes)


def _text(raw: str, version: Version) -> str:
    return raw


def _version_number(raw: str, version: Version) -> str:
    number = normalize_version(raw)
    if number is None:
        raise BadValue(raw)
    return number


# -- version tables --------------------------------------------------------------------------
INF = math.inf
V5_UP: Ranges = ((5.0, INF),)
V6_UP: Ranges = ((6.0, INF),)
V7_UP: Ranges = ((7.0, INF),)
LEGACY: Ranges = ((0.0, 3.99),)

QUALITY: VersionTable = (
    ("v", 0, 3.99, (0.25, 0.5, 1.0, 2.0, 5.0)),
    ("v", 4, 6.0, (0.25, 0.5, 1.0)),
    ("v", 6.01, 6.99, (0.25, 0.5, 1.0, 2.0)),
    ("v", 7, INF, (1.0, 2.0, 4.0)),
    ("niji", 0, 6.99, (0.25, 0.5, 1.0)),
    ("niji", 7, INF, (1.0, 2.0, 4.0)),
)
STYLE: VersionTable = (
    ("v", 4, 4.99, ("4a", "4b", "4c")),
    ("v", 5, 5.0, ()),
    ("v", 5.01, INF, ("raw",)),
    ("niji", 5, 5.99, ("cute", "expressive", "original", "scenic")),
    ("niji", 6, INF, ("raw",)),
)
IMAGE_WEIGHT: VersionTable = (
    ("v", 0, 3.99, (-10000.0, 10000.0)),
    ("v", 5, 5.99, (0.5, 2.0)),
    ("v", 6, INF, (0.0, 3.0)),
    ("niji", 0, 5.99, (0.5, 2.0)),
    ("niji", 6, INF, (0.0, 3.0)),
)
STYLE_VERSION: VersionTable = (
    ("v", 6, 6.99, (1, 2, 3, 4)),
    ("v", 7, INF, (4, 6)),
    ("niji", 6, 6.99, (1, 2, 3, 4)),
    ("niji", 7, INF, (4, 6)),
)


def _spec(name: str, aliases: str, flag: str, arity: str, parse: ValueParser | None = None,
          v: Ranges = ALL, niji: Ranges = ALL, values: str = "") -> ParamSpec:
    return ParamSpec(name, tuple(aliases.split()), flag, arity, parse, v, niji, values)


_V6_ONLY: Ranges = ((6.0, 6.99),)
_TILE: Ranges = ((0.0, 3.99), (5.0, INF))
_SEED = f"0-{MAX_CODE}"

# The canonical order: a canonical prompt lists its parameters in this order.
SPECS: tuple[ParamSpec, ...] = (
    _spec("aspect", "ar aspect", "ar", "one", _aspect, values="W:H, whole numbers, 1:14 to 14:1"),
    _spec("version", "v version", "v", "one", _version_number, niji=NONE,
          values="an accepted version (PromptRules.versions)"),
    _spec("niji", "niji", "niji", "one", _version_number, v=NONE,
          values="an accepted niji version (PromptRules.niji_versions)"),
    _spec("chaos", "chaos c", "chaos", "one", int_range(0, 100), values="0-100"),
    _spec("quality", "quality q", "quality", "one", _float_choice(QUALITY),
          values="see the quality table"),
    _spec("stylize", "stylize s", "stylize", "one", int_range(0, 1000), values="0-1000"),
    _spec("weird", "weird w", "weird", "one", int_range(0, 3000), v=V5_UP, niji=V5_UP,
          values="0-3000"),
    _spec("style", "style", "style", "one", _style(STYLE), v=((4.0, INF),), niji=V5_UP,
          values="see the style table"),
    _spec("seed", "seed", "seed", "one", int_range(0, MAX_CODE), values=_SEED),
    _spec("sameseed", "sameseed", "sameseed", "one", int_range(0, MAX_CODE), v=LEGACY,
          niji=NONE, values=_SEED),
    _spec("stop", "stop", "stop", "one", int_range(10, 100), values="10-100"),
    _spec("tile", "tile", "tile", "flag", v=_TILE, niji=V5_UP),
    _spec("iw", "iw", "iw", "one", _float_range(IMAGE_WEIGHT), v=_TILE, niji=V5_UP,
          values="0-3 (v6+, niji 6+); 0.5-2 (v5.x, niji 5)"),
    _spec("cref", "cref", "cref", "many", _url_list, v=_V6_ONLY, niji=_V6_ONLY,
          values="one or more image URLs"),
    _spec("cw", "cw", "cw", "one", int_range(0, 100), v=_V6_ONLY, niji=_V6_ONLY,
          values="0-100"),
    _spec("sref", "sref", "sref", "many", _sref, v=V6_UP, niji=V6_UP,
          values="image URLs, style codes (0-4294967295) or `random`, each with optional ::weight"),
    _spec("sw", "sw", "sw", "one", int_range(0, 1000), v=V6_UP, niji=V6_UP, values="0-1000"),
    _spec("sv", "sv", "sv", "one", _int_choice(STYLE_VERSION), v=V6_UP, niji=V6_UP,
          values="1-4 (v6.x, niji 6); 4 or 6 (v7)"),
    _spec("oref", "oref", "oref", "one", _url_one, v=V7_UP, niji=NONE, values="one image URL"),
    _spec("ow", "ow", "ow", "one", int_range(1, 1000), v=V7_UP, niji=NONE, values="1-1000"),
    _spec("personalize", "p personalize", "p", "optional", _codes, v=V6_UP, niji=V6_UP,
          values="none, or profile/moodboard codes with optional ::weight"),
    _spec("exp", "exp", "exp", "one", int_range(0, 100), v=V7_UP, niji=V7_UP, values="0-100"),
    _spec("no", "no", "no", "many", _text, values="any text"),
    _spec("repeat", "repeat r", "repeat", "one", int_range(1, 40), values="1-40"),
    _spec("draft", "draft", "draft", "flag", v=V7_UP, niji=NONE),
    _spec("video", "video", "video", "flag", v=((0.0, 5.2),), niji=((0.0, 5.99),)),
    _spec("hd", "hd", "hd", "flag", v=LEGACY, niji=NONE),
    _spec("uplight", "uplight", "uplight", "flag", v=((0.0, 4.99),), niji=((0.0, 4.99),)),
    _spec("upbeta", "upbeta", "upbeta", "flag", v=((0.0, 4.99),), niji=((0.0, 4.99),)),
    _spec("test", "test", "test", "flag", v=LEGACY, niji=NONE),
    _spec("testp", "testp", "testp", "flag", v=LEGACY, niji=NONE),
    _spec("creative", "creative", "creative", "flag", v=LEGACY, niji=NONE),
    _spec("relax", "relax", "relax", "flag"),
    _spec("fast", "fast", "fast", "flag"),
    _spec("turbo", "turbo", "turbo", "flag"),
)

BY_ALIAS: dict[str, ParamSpec] = {alias: spec for spec in SPECS for alias in spec.aliases}
BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in SPECS}
ORDER: dict[str, int] = {spec.name: index for index, spec in enumerate(SPECS)}
ALIASES_LONGEST_FIRST: tuple[str, ...] = tuple(sorted(BY_ALIAS, key=len, reverse=True))

# Groups of parameters of which at most one may be given.
CONFLICTS: tuple[frozenset[str], ...] = (
    frozenset({"version", "niji"}),
    frozenset({"relax", "fast", "turbo"}),
    frozenset({"seed", "sameseed"}),
    frozenset({"test", "testp"}),
)
# A parameter that needs one of some others.
REQUIRES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cw", ("cref",)),
    ("ow", ("oref",)),
    ("creative", ("test", "testp")),
)
MODES = ("fast", "relax", "turbo")

# Lookup tables derived from the ones above, for the parser's hot path.
CONFLICT_GROUP: dict[str, int] = {name: i for i, group in enumerate(CONFLICTS) for name in group}
NEEDS: dict[str, tuple[str, ...]] = dict(REQUIRES)


@lru_cache(maxsize=64)
def version_of(family: str, number: str) -> tuple[Version, frozenset[str]]:
    """The :class:`Version` and the names of the parameters it has (cached per version)."""
    version = Version(family, number)
    return version, frozenset(spec.name for spec in SPECS if spec.available(version))


def lookup(name: str) -> ParamSpec | None:
    """The spec for a parameter spelled ``name`` (with or without dashes, any case)."""
    return BY_ALIAS.get(name.lstrip("-").lower())
