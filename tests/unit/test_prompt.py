"""gengate.prompt: grammar, parameter ranges per version, errors, canonical form, permutations.

Ranges come from Midjourney's parameter documentation; the table we chose is docs/prompt.md.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gengate.errors import BannedPrompt, GengateError, InvalidParameter
from gengate.products.midjourney.prompt import (
    ILLEGAL_PREFIXES,
    PROMPT_CHECK_OK,
    ParsedPrompt,
    PromptRules,
    check_prompt,
    is_illegal_prompt_failure,
    parse_prompt,
)

LEGACY = PromptRules(versions=("3", "4", "5", "5.1", "5.2", "6", "6.1", "7"),
                     niji_versions=("4", "5", "6"))
URL = "https://example.com/a.png"
URL2 = "https://example.com/b.jpg"


def parse(prompt: str, rules: PromptRules | None = None) -> ParsedPrompt:
    return parse_prompt(prompt, rules)


def message(prompt: str, rules: PromptRules | None = None) -> str:
    with pytest.raises(InvalidParameter) as caught:
        parse_prompt(prompt, rules)
    assert caught.value.message.startswith("[Invalid parameter] ")
    return caught.value.message


def bad_value(name: str, value: str) -> str:
    return f"[Invalid parameter] Invalid value for argument: `{name}`:`{value}`"


# -- numeric ranges: min, max, and just outside on both sides ---------------------------------
# (suffix that selects a version and satisfies dependencies, name, min, max, below, above)
INT_RANGES = [
    ("", "--chaos", 0, 100),
    ("", "--c", 0, 100),
    ("", "--stylize", 0, 1000),
    ("", "--s", 0, 1000),
    ("", "--weird", 0, 3000),
    ("", "--w", 0, 3000),
    ("", "--seed", 0, 4294967295),
    ("", "--stop", 10, 100),
    ("", "--repeat", 1, 40),
    ("", "--r", 1, 40),
    ("", "--exp", 0, 100),
    ("", "--sw", 0, 1000),
    (f" --oref {URL}", "--ow", 1, 1000),
    (f" --v 6 --cref {URL}", "--cw", 0, 100),
    (f" --v 6.1 --cref {URL}", "--cw", 0, 100),
    (" --v 3", "--sameseed", 0, 4294967295),
]


def _rules_for(suffix: str) -> PromptRules | None:
    return LEGACY if "--v 3" in suffix else None


@pytest.mark.parametrize(("suffix", "name", "low", "high"), INT_RANGES)
def test_integer_bounds_are_accepted(suffix: str, name: str, low: int, high: int) -> None:
    rules = _rules_for(suffix)
    for value in (low, high):
        parsed = parse(f"a cat {name} {value}{suffix}", rules)
        canonical_name = next(p.name for p in parsed.params if p.raw == str(value))
        assert parsed.get(name) == value
        assert parsed.get(canonical_name) == value


@pytest.mark.parametrize(("suffix", "name", "low", "high"), INT_RANGES)
def test_integer_just_outside_is_refused(suffix: str, name: str, low: int, high: int) -> None:
    rules = _rules_for(suffix)
    for value in (str(low - 1), str(high + 1), "1.5", "ten", "+5"):
        assert message(f"a cat {name} {value}{suffix}", rules) == bad_value(name, value)


IMAGE_WEIGHT = [
    ("7", "0", "3", "-0.1", "3.1"),
    ("6.1", "0", "3", "-0.01", "3.01"),
    ("6", "0", "3", "-1", "3.5"),
    ("5.2", "0.5", "2", "0.4", "2.1"),
    ("5", ".5", "2.0", "0.49", "2.01"),
]


@pytest.mark.parametrize(("version", "low", "high", "below", "above"), IMAGE_WEIGHT)
def test_image_weight_range_depends_on_version(version: str, low: str, high: str,
                                               below: str, above: str) -> None:
    assert parse(f"{URL} a cat --iw {low} --v {version}").get("iw") == float(low)
    assert parse(f"{URL} a cat --iw {high} --v {version}").get("iw") == float(high)
    for value in (below, above):
        assert message(f"{URL} a cat --iw {value} --v {version}") == bad_value("--iw", value)


def test_image_weight_niji() -> None:
    assert parse("a cat --iw 3 --niji 6").get("iw") == 3.0
    assert message("a cat --iw 3 --niji 5") == bad_value("--iw", "3")


QUALITY = [
    ("7", ("1", "2", "4"), (".25", ".5", "0.5", "3", "8")),
    ("6.1", (".25", ".5", "1", "2"), ("4", ".75", "0")),
    ("6", (".25", "0.5", "1"), ("2", "4")),
    ("5.2", (".25", ".5", "1"), ("2",)),
    ("5", (".25", ".5", "1"), ("2",)),
    ("niji 6", (".25", ".5", "1"), ("2", "4")),
    ("niji 5", (".25", ".5", "1"), ("2",)),
]


@pytest.mark.parametrize(("version", "good", "bad"), QUALITY)
def test_quality_values_per_version(version: str, good: tuple[str, ...],
                                   bad: tuple[str, ...]) -> None:
    flag = "--niji " + version.split()[1] if version.startswith("niji") else f"--v {version}"
    for value in good:
        assert parse(f"a cat --q {value} {flag}").get("quality") == float(value)
        assert parse(f"a cat --quality {value} {flag}").version == version
    for value in bad:
        assert message(f"a cat --q {value} {flag}") == bad_value("--q", value)


STYLE = [
    ("--v 7", ("raw", "RAW"), ("cute", "scenic", "4a", "")),
    ("--v 6.1", ("raw",), ("expressive",)),
    ("--v 5.2", ("raw",), ("original",)),
    ("--v 5.1", ("raw",), ("cute",)),
    ("--v 5", (), ("raw",)),
    ("--niji 5", ("cute", "expressive", "original", "scenic"), ("raw",)),
    ("--niji 6", ("raw",), ("cute", "scenic")),
]


@pytest.mark.parametrize(("flag", "good", "bad"), STYLE)
def test_style_values_per_version(flag: str, good: tuple[str, ...], bad: tuple[str, ...]) -> None:
    for value in good:
        assert parse(f"a cat --style {value} {flag}").get("style") == value.lower()
    for value in bad:
        if value:
            assert message(f"a cat --style {value} {flag}") == bad_value("--style", value)
        else:
            assert message(f"a cat {flag} --style") == (
                "[Invalid parameter] Missing value for argument: `--style`")


@pytest.mark.parametrize(("flag", "good", "bad"), [
    ("--v 7", ("4", "6"), ("1", "3", "5", "7")),
    ("--v 6.1", ("1", "2", "3", "4"), ("0", "5", "6")),
    ("--v 6", ("1", "4"), ("6",)),
    ("--niji 6", ("1", "4"), ("6",)),
])
def test_style_reference_version(flag: str, good: tuple[str, ...], bad: tuple[str, ...]) -> None:
    for value in good:
        assert parse(f"a cat --sref 123 --sv {value} {flag}").get("sv") == int(value)
    for value in bad:
        assert message(f"a cat --sv {value} {flag}") == bad_value("--sv", value)


# -- aspect ratio --------------------------------------------------------------------------
@pytest.mark.parametrize(("written", "expected"), [
    ("1:1", (1, 1)), ("16:9", (16, 9)), ("9:16", (9, 16)), ("14:1", (14, 1)), ("1:14", (1, 14)),
    ("28:2", (28, 2)), ("2:28", (2, 28)), ("4:5", (4, 5)), ("1000:999", (1000, 999)),
    ("08:01", (8, 1)),
])
def test_aspect_ratio_accepted(written: str, expected: tuple[int, int]) -> None:
    for name in ("--ar", "--aspect", "--AR"):
        assert parse(f"a cat {name} {written}").aspect == expected


@pytest.mark.parametrize("written", [
    "15:1", "1:15", "29:2", "0:1", "1:0", "0:0", "1.5:1", "16x9", "16:9:1", "-1:1", "16:",
    ":9", "16", "1234567:1", "a:b",
])
def test_aspect_ratio_refused(written: str) -> None:
    assert message(f"a cat --ar {written}") == bad_value("--ar", written)


def test_aspect_default_is_square_and_kept_unreduced() -> None:
    assert parse("a cat").aspect == (1, 1)
    parsed = parse("a cat --ar 32:18")
    assert parsed.aspect == (32, 18)
    assert parsed.canonical == "a cat --ar 32:18"


# -- versions ------------------------------------------------------------------------------
@pytest.mark.parametrize(("flag", "version"), [
    ("", "7"), ("--v 7", "7"), ("--version 7", "7"), ("--v 7.0", "7"), ("--v 6.0", "6"),
    ("--v 6", "6"), ("--v 6.1", "6.1"), ("--v 5.2", "5.2"), ("--v 5.1", "5.1"), ("--v 5", "5"),
    ("--niji 6", "niji 6"), ("--niji 5", "niji 5"), ("--V 6.1", "6.1"),
])
def test_accepted_versions(flag: str, version: str) -> None:
    assert parse(f"a cat {flag}").version == version


@pytest.mark.parametrize(("flag", "value"), [
    ("--v", "8"), ("--v", "4"), ("--v", "6.2"), ("--v", "v6"), ("--version", "latest"),
    ("--niji", "4"), ("--niji", "7"), ("--niji", "6.1"), ("--v", "7.1"), ("--v", "-7"),
])
def test_refused_versions(flag: str, value: str) -> None:
    assert message(f"a cat {flag} {value}") == bad_value(flag, value)


def test_contract_example_for_unsupported_version() -> None:
    assert message("a cat --v 8") == "[Invalid parameter] Invalid value for argument: `--v`:`8`"


def test_rules_choose_versions() -> None:
    rules = PromptRules(versions=("6.0", "7", "8"), niji_versions=("6", "7"),
                        default_version="6")
    assert rules.versions == ("6", "7", "8")
    assert parse("a cat --v 8", rules).version == "8"
    assert parse("a cat --niji 7", rules).version == "niji 7"
    assert parse("a cat", rules).version == "6"
    assert message("a cat --v 6.1", rules) == bad_value("--v", "6.1")
    with pytest.raises(ValueError):
        PromptRules(versions=("6",), default_version="7")
    with pytest.raises(ValueError):
        PromptRules(versions=("six",))


def test_niji_needs_a_version_number() -> None:
    assert message("a cat --niji") == "[Invalid parameter] Missing value for argument: `--niji`"
    assert message("a cat --v") == "[Invalid parameter] Missing value for argument: `--v`"


@pytest.mark.parametrize(("prompt", "name", "version"), [
    (f"a cat --cref {URL}", "--cref", "7"),
    (f"a cat --cref {URL} --v 5.2", "--cref", "5.2"),
    (f"a cat --cref {URL} --niji 5", "--cref", "niji 5"),
    ("a cat --cw 50", "--cw", "7"),
    (f"a cat --oref {URL} --v 6.1", "--oref", "6.1"),
    ("a cat --ow 100 --v 6.1", "--ow", "6.1"),
    (f"a cat --oref {URL} --niji 6", "--oref", "niji 6"),
    ("a cat --draft --v 6.1", "--draft", "6.1"),
    ("a cat --draft --niji 6", "--draft", "niji 6"),
    ("a cat --exp 10 --v 6.1", "--exp", "6.1"),
    ("a cat --sref 1 --v 5.2", "--sref", "5.2"),
    ("a cat --sw 100 --v 5.2", "--sw", "5.2"),
    ("a cat --sv 4 --v 5.2", "--sv", "5.2"),
    ("a cat --p --v 5.2", "--p", "5.2"),
    ("a cat --personalize --niji 5", "--personalize", "niji 5"),
    ("a cat --sameseed 1", "--sameseed", "7"),
    ("a cat --video", "--video", "7"),
    ("a cat --video --v 6", "--video", "6"),
    ("a cat --hd", "--hd", "7"),
    ("a cat --uplight", "--uplight", "7"),
    ("a cat --upbeta --v 5", "--upbeta", "5"),
    ("a cat --test", "--test", "7"),
    ("a cat --creative --test", "--creative", "7"),
    ("a cat --weird 10 --v 4", "--weird", "4"),
    ("a cat --tile --v 4", "--tile", "4"),
    ("a cat --iw 1 --v 4", "--iw", "4"),
])
def test_parameter_not_available_in_version(prompt: str, name: str, version: str) -> None:
    rules = LEGACY if "--v 4" in prompt else None
    assert message(prompt, rules) == (
        f"[Invalid parameter] Argument `{name}` is not available in version `{version}`")


@pytest.mark.parametrize(("prompt", "name"), [
    (f"a cat --v 6 --cref {URL}", "cref"),
    (f"a cat --v 6.1 --cref {URL} {URL2} --cw 0", "cw"),
    (f"a cat --niji 6 --cref {URL}", "cref"),
    (f"a cat --oref {URL} --ow 400", "ow"),
    ("a cat --draft", "draft"),
    ("a cat --exp 25", "exp"),
    ("a cat --v 5.2 --video", "video"),
    ("a cat --niji 5 --video", "video"),
    ("a cat --v 6 --tile", "tile"),
    ("a cat --v 5 --weird 100", "weird"),
    ("a cat --niji 6 --sref random --sw 200", "sw"),
    ("a cat --v 3 --hd --sameseed 5", "hd"),
    ("a cat --v 4 --uplight", "uplight"),
    ("a cat --v 3 --test --creative", "creative"),
    ("a cat --v 3 --testp", "testp"),
    ("a cat --niji 4 --upbeta", "upbeta"),
])
def test_parameter_available_in_version(prompt: str, name: str) -> None:
    assert parse(prompt, LEGACY).has(name)


@pytest.mark.parametrize(("prompt", "written", "needed"), [
    ("a cat --v 6 --cw 50", "--cw", "--cref"),
    ("a cat --ow 50", "--ow", "--oref"),
    ("a cat --v 3 --creative", "--creative", "--test"),
])
def test_dependent_parameters(prompt: str, written: str, needed: str) -> None:
    assert message(prompt, LEGACY) == (
        f"[Invalid parameter] Argument `{written}` requires `{needed}`")


# -- conflicts, duplicates, unknown, missing -------------------------------------------------
@pytest.mark.parametrize(("prompt", "first", "second"), [
    ("a cat --v 6 --niji 6", "--v", "--niji"),
    ("a cat --niji 6 --version 6", "--niji", "--version"),
    ("a cat --fast --relax", "--fast", "--relax"),
    ("a cat --turbo --fast", "--turbo", "--fast"),
    ("a cat --relax --ar 1:1 --turbo", "--relax", "--turbo"),
])
def test_conflicting_arguments(prompt: str, first: str, second: str) -> None:
    assert message(prompt) == (
        f"[Invalid parameter] Conflicting arguments: `{first}` and `{second}`")


def test_conflicts_are_reported_in_table_order_and_after_duplicates() -> None:
    assert message("a cat --fast --v 6 --relax --niji 6") == (
        "[Invalid parameter] Conflicting arguments: `--v` and `--niji`")
    assert message("a cat --fast --relax --ar 1:1 --ar 2:3") == (
        "[Invalid parameter] Duplicate argument: `--ar`")


@pytest.mark.parametrize(("prompt", "written"), [
    ("a cat --ar 1:1 --ar 2:3", "--ar"),
    ("a cat --ar 1:1 --aspect 2:3", "--aspect"),
    ("a cat --s 100 --stylize 100", "--stylize"),
    ("a cat --tile --tile", "--tile"),
])
def test_duplicate_arguments(prompt: str, written: str) -> None:
    assert message(prompt) == f"[Invalid parameter] Duplicate argument: `{written}`"


@pytest.mark.parametrize("written", ["--foo", "--", "---ar", "--arx", "--stealth", "--motion"])
def test_unrecognized_argument(written: str) -> None:
    assert message(f"a cat {written} 1") == (
        f"[Invalid parameter] Unrecognized argument: `{written}`")


@pytest.mark.parametrize("written", [
    "--ar16:9", "--AR16:9", "--v7", "--v6.1", "--niji6", "--s750", "--q.5", "--c10", "--seed123",
    "--stop90", "--r4", "--ar:16:9",
])
def test_missing_space(written: str) -> None:
    assert message(f"a cat {written}") == (
        f"[Invalid parameter] Missing space in argument: `{written}`")


@pytest.mark.parametrize("name", [
    "--ar", "--aspect", "--chaos", "--c", "--q", "--s", "--weird", "--seed", "--stop", "--style",
    "--iw", "--sw", "--sv", "--no", "--repeat", "--exp", "--sref", "--oref",
])
def test_missing_value(name: str) -> None:
    suffix = " --v 6" if name == "--sv" else ""
    assert message(f"a cat {name}{suffix}") == (
        f"[Invalid parameter] Missing value for argument: `{name}`")


@pytest.mark.parametrize(("prompt", "name", "value"), [
    ("a cat --tile yes", "--tile", "yes"),
    ("a cat --fast now", "--fast", "now"),
    ("a cat --ar 16:9 more words", "--ar", "16:9 more words"),
    ("a cat --chaos 10 20", "--chaos", "10 20"),
    ("a cat --oref https://x.com/a.png https://x.com/b.png", "--oref",
     "https://x.com/a.png https://x.com/b.png"),
    ("a cat --oref not-a-url", "--oref", "not-a-url"),
    ("a cat --v 6 --cref ftp://x.com/a.png", "--cref", "ftp://x.com/a.png"),
    ("a cat --sref abc", "--sref", "abc"),
    ("a cat --sref 4294967296", "--sref", "4294967296"),
    ("a cat --sref 12::x", "--sref", "12::x"),
    ("a cat --p bad!code", "--p", "bad!code"),
])
def test_invalid_values(prompt: str, name: str, value: str) -> None:
    assert message(prompt) == bad_value(name, value)


# -- text and image prompts ----------------------------------------------------------------
@pytest.mark.parametrize("prompt", [
    "", "   ", "\n\t", "--ar 1:1", f"{URL}", f"{URL} --ar 16:9", f"<{URL}> --v 6",
])
def test_empty_prompt(prompt: str) -> None:
    assert message(prompt) == "[Invalid parameter] Prompt is empty"


def test_two_images_without_text_are_allowed() -> None:
    parsed = parse(f"{URL} <{URL2}> --ar 16:9")
    assert parsed.image_urls == (URL, URL2)
    assert parsed.text == ""
    assert parsed.canonical == f"{URL} {URL2} --ar 16:9"


def test_image_urls_only_lead_the_prompt() -> None:
    parsed = parse(f"{URL} HTTPS://example.com/c.png a cat near {URL2} --v 6")
    assert parsed.image_urls == (URL, "HTTPS://example.com/c.png")
    assert parsed.text == f"a cat near {URL2}"


def test_broken_leading_url() -> None:
    assert message("https:// a cat") == "[Invalid parameter] Invalid image URL: `https://`"


def test_whitespace_and_em_dash() -> None:
    parsed = parse("  a   cat\u2014in a hat \n \u2014ar 16:9\t\u2014v 6  \u2013chaos 5 ")
    assert parsed.text == "a cat\u2014in a hat"
    assert parsed.aspect == (16, 9)
    assert parsed.version == "6"
    assert parsed.get("chaos") == 5
    assert parsed.canonical == "a cat\u2014in a hat --ar 16:9 --v 6 --chaos 5"
    assert parse("a cat \u2014 a dog").text == "a cat \u2014 a dog"


# -- typed values and the result object ----------------------------------------------------
def test_typed_fields() -> None:
    parsed = parse(f"<{URL}> A red fox --aspect 3:2 --seed 42 --relax --q 2 --sref 7 random "
                   f"{URL2}::2 --p abc def::0.5 --no snow, trees --draft --tile --iw 1.5")
    assert parsed.image_urls == (URL,)
    assert parsed.text == "A red fox"
    assert parsed.aspect == (3, 2)
    assert parsed.seed == 42
    assert parsed.mode == "relax"
    assert parsed.version == "7"
    assert parsed.get("sref") == ("7", "random", f"{URL2}::2")
    assert parsed.get("personalize") == ("abc", "def::0.5")
    assert parsed.get("--p") == ("abc", "def::0.5")
    assert parsed.get("no") == "snow, trees"
    assert parsed.get("draft") is True and parsed.get("tile") is True
    assert parsed.get("quality") == 2.0
    assert parsed.get("iw") == 1.5
    assert parsed.get("chaos") is None and parsed.get("chaos", 0) == 0
    assert not parsed.has("chaos") and parsed.has("--seed")
    names = [p.name for p in parsed.params]
    assert names == ["aspect", "quality", "seed", "tile", "iw", "sref", "personalize", "no",
                     "draft", "relax"]
    aspect = parsed.params[0]
    assert (aspect.value, aspect.raw, aspect.written) == ((3, 2), "3:2", "--aspect")


@pytest.mark.parametrize(("flag", "mode"), [
    ("--fast", "fast"), ("--relax", "relax"), ("--turbo", "turbo"), ("--draft", None), ("", None),
])
def test_mode(flag: str, mode: str | None) -> None:
    assert parse(f"a cat {flag}").mode == mode


def test_seed_default_is_none() -> None:
    assert parse("a cat").seed is None
    assert parse("a cat --seed 0").seed == 0


def test_bare_personalize_is_empty_tuple() -> None:
    parsed = parse("a cat --p")
    assert parsed.get("personalize") == ()
    assert parsed.canonical == "a cat --p"


def test_cref_accepts_several_urls() -> None:
    parsed = parse(f"a cat --v 6 --cref {URL} <{URL2}> --cw 20")
    assert parsed.get("cref") == (URL, URL2)
    assert parsed.get("cw") == 20


# -- canonical form ------------------------------------------------------------------------
@pytest.mark.parametrize(("prompt", "canonical"), [
    ("a cat --v 7 --ar 4:5", "a cat --ar 4:5 --v 7"),
    ("a  cat --version 6.0 --aspect 16:9", "a cat --ar 16:9 --v 6"),
    ("a cat --c 10 --s 250 --w 5 --q .5 --r 3 --v 6",
     "a cat --v 6 --chaos 10 --quality 0.5 --stylize 250 --weird 5 --repeat 3"),
    ("a cat --turbo --personalize x1 --STYLE Raw", "a cat --style raw --p x1 --turbo"),
    ("a cat --sref RANDOM 0012::1.50 --sw 100", "a cat --sref random 12::1.5 --sw 100"),
    ("a cat --iw 2.50 --niji 6", "a cat --niji 6 --iw 2.5"),
    ("a cat --iw 0.00001", "a cat --iw 0.00001"),
    (f"<{URL}> a cat --oref <{URL2}> --ow 100", f"{URL} a cat --oref {URL2} --ow 100"),
    ("a cat --no  red,   green", "a cat --no red, green"),
    ("hot:: dog::2 --v 6", "hot:: dog::2 --v 6"),
])
def test_canonical(prompt: str, canonical: str) -> None:
    parsed = parse(prompt)
    assert parsed.canonical == canonical
    again = parse(parsed.canonical)
    assert again.canonical == canonical
    assert again.params == parsed.params


def test_render_excludes_parameters() -> None:
    parsed = parse("a cat --fast --ar 2:3 --v 6.1")
    assert parsed.render(exclude=("fast", "relax", "turbo")) == "a cat --ar 2:3 --v 6.1"
    assert parsed.render(exclude=("--ar", "--version")) == "a cat --fast"
    assert parsed.render() == parsed.canonical


# -- multi-prompt weights ------------------------------------------------------------------
@pytest.mark.parametrize("prompt", [
    "hot:: dog", "hot::2 dog", "hot::2 dog::-0.5", "space::ship", "cat::1.5", "a::-1 b::2",
    "still life painting:: fruit::-.5", "cat::",
])
def test_weights_accepted(prompt: str) -> None:
    assert parse(prompt).text == prompt


@pytest.mark.parametrize("prompt", [
    "hot::-1", "hot::-1 dog", "hot::0", "a::-2 b", "a::1 b::-2", "cat::-0.5 dog::-0.5",
])
def test_weights_must_sum_positive(prompt: str) -> None:
    assert message(prompt) == "[Invalid parameter] The sum of all prompt weights must be positive"


# -- permutations --------------------------------------------------------------------------
def test_permutations_expand_and_keep_original_as_canonical() -> None:
    parsed = parse("a  {red, green,blue} bird --ar 16:9")
    assert parsed.canonical == "a {red, green,blue} bird --ar 16:9"
    assert [p.canonical for p in parsed.permutations] == [
        "a red bird --ar 16:9", "a green bird --ar 16:9", "a blue bird --ar 16:9"]
    assert parsed.text == "a red bird"
    assert parsed.aspect == (16, 9)


def test_permutations_in_parameters_nested_and_escaped() -> None:
    parsed = parse("a {cat, {big, small} dog} --ar {1:1, 2:3} --v 6")
    assert [p.canonical for p in parsed.permutations] == [
        "a cat --ar 1:1 --v 6", "a cat --ar 2:3 --v 6",
        "a big dog --ar 1:1 --v 6", "a big dog --ar 2:3 --v 6",
        "a small dog --ar 1:1 --v 6", "a small dog --ar 2:3 --v 6"]
    assert [p.text for p in parse(r"a {salt\, pepper, sugar} jar").permutations] == [
        "a salt, pepper jar", "a sugar jar"]


def test_permutations_validate_every_variant() -> None:
    assert message("a cat --v {6, 8}") == bad_value("--v", "8")
    assert message("a cat --ar {1:1, 20:1}") == bad_value("--ar", "20:1")
    assert message("{a cat, } --v 6") == "[Invalid parameter] Prompt is empty"


def test_permutation_render_keeps_braces() -> None:
    parsed = parse("a {red, blue} bird --fast --ar {1:1, 2:3}")
    assert parsed.mode == "fast"
    assert parsed.render(exclude=("fast",)) == "a {red, blue} bird --ar {1:1, 2:3}"


@pytest.mark.parametrize("prompt", ["a {red, blue bird", "a red} bird", "a }{ b", "{{a}"])
def test_unbalanced_braces(prompt: str) -> None:
    assert message(prompt) == "[Invalid parameter] Unbalanced braces in permutation prompt"


def test_too_many_permutations() -> None:
    options = ", ".join(str(n) for n in range(41))
    assert message(f"a {{{options}}} cat") == (
        "[Invalid parameter] Too many permutations (more than 40)")
    assert len(parse(f"a {{{', '.join(str(n) for n in range(40))}}} cat").permutations) == 40
    assert message("{a,b} {c,d} {e,f} cat", PromptRules(max_permutations=7)) == (
        "[Invalid parameter] Too many permutations (more than 7)")
    assert message("{" * 9 + "a" + "}" * 9) == (
        "[Invalid parameter] Permutation braces are nested too deeply")


# -- contract constants and the combined check ---------------------------------------------
def test_illegal_prefixes() -> None:
    assert ILLEGAL_PREFIXES == (
        "[Invalid parameter]", "[Banned prompt detected]", "[Image denied]", "[Invalid link]",
        "[Invalid prompt]", "[TTAPI prompt filter]", "[TTAPI image filter]")
    for prefix in ILLEGAL_PREFIXES:
        assert is_illegal_prompt_failure(f"{prefix} something")
    assert is_illegal_prompt_failure("[Invalid link!] Could not fetch the image")
    assert is_illegal_prompt_failure(message("a cat --v 8"))
    for other in (None, "", "Job Timeout", "[Internal error] boom", "invalid parameter",
                  "Failed to process your command"):
        assert not is_illegal_prompt_failure(other)
    assert PROMPT_CHECK_OK == "Prompt verification successful."


def test_check_prompt_filters_text_not_urls() -> None:
    parsed = check_prompt("https://example.com/nude.png a portrait --ar 2:3")
    assert parsed.aspect == (2, 3)
    assert check_prompt("a cat --no nude").get("no") == "nude"
    with pytest.raises(BannedPrompt) as caught:
        check_prompt("a {dressed, nude} portrait")
    assert caught.value.message.startswith("[Banned prompt detected]")
    assert "[nude]" in caught.value.message
    with pytest.raises(InvalidParameter):
        check_prompt("a portrait --v 8", PromptRules())


# -- the hot path: repeated prompts, cached parameters ---------------------------------------
def test_repeated_prompts_give_equal_results() -> None:
    prompt = "mountain lake at dawn, golden light --ar 16:9 --v 6.1 --s 250 --c 10"
    first, again = check_prompt(prompt), check_prompt(prompt)
    assert first == again
    assert [(p.raw, p.written) for p in first.params] == [(p.raw, p.written) for p in again.params]
    other = parse(f"{URL} a lake --ar 16:9 --v 6.1 --s 250 --c 10")
    assert other.params == first.params
    assert other.canonical == f"{URL} a lake --ar 16:9 --v 6.1 --chaos 10 --stylize 250"


def test_same_parameters_are_checked_against_each_rules() -> None:
    eight = PromptRules(versions=("7", "8"))
    for _ in range(2):
        assert parse("a cat --v 8", eight).version == "8"
        assert message("a cat --v 8") == bad_value("--v", "8")
        assert parse("a cat", eight).version == "7"
        assert parse("a cat", PromptRules(versions=("6",), default_version="6")).version == "6"


def test_refused_parameters_are_refused_every_time() -> None:
    for _ in range(3):
        assert message("a cat --ar 20:1") == bad_value("--ar", "20:1")
        assert message("https:// a cat --ar 2:1") == (
            "[Invalid parameter] Invalid image URL: `https://`")
        assert message("--ar 2:1") == "[Invalid parameter] Prompt is empty"


def test_long_parameter_values_are_parsed_the_same() -> None:
    words = " ".join(f"word{n}" for n in range(60))
    for _ in range(2):
        parsed = parse(f"a cat --no {words} --ar 2:3")
        assert parsed.get("no") == words
        assert parsed.canonical == f"a cat --ar 2:3 --no {words}"


# -- properties ----------------------------------------------------------------------------
_VALUES = st.sampled_from([
    "1:1", "16:9", "15:1", "0", "1", "2", "4", ".5", "0.25", "10", "100", "101", "1000", "3000",
    "4294967295", "4294967296", "-1", "raw", "cute", "6", "6.1", "7", "8", "5.2", "random",
    URL, "abc", "x::2", "{1, 2}", "{", "}", "", "a b", "::-1", "\u2014",
])
_NAMES = st.sampled_from([
    "--ar", "--aspect", "--v", "--version", "--niji", "--c", "--chaos", "--s", "--w", "--seed",
    "--sameseed", "--stop", "--q", "--style", "--tile", "--no", "--iw", "--cref", "--cw",
    "--sref", "--sw", "--sv", "--p", "--r", "--relax", "--fast", "--turbo", "--draft", "--exp",
    "--video", "--hd", "--uplight", "--upbeta", "--test", "--creative", "--oref", "--ow",
    "--foo", "--", "\u2014ar", "--ar16:9",
])
_TEXTS = st.sampled_from([
    "a cat", "hot:: dog::2", "{red, blue} bird", "", URL, f"{URL} {URL2}", "a \u2014 b",
    "cat::-1", "space ship", "{a, {b, c}}", "x\\, y",
])
_FRAGMENT_PROMPTS = st.builds(
    lambda text, params: " ".join([text, *(f"{n} {v}" for n, v in params)]),
    _TEXTS, st.lists(st.tuples(_NAMES, _VALUES), max_size=6),
)


def _assert_stable(prompt: str) -> None:
    try:
        parsed = parse_prompt(prompt)
    except GengateError as exc:
        assert isinstance(exc, InvalidParameter)
        assert exc.message.startswith("[Invalid parameter] ")
        return
    again = parse_prompt(parsed.canonical)
    assert again.canonical == parsed.canonical
    assert again.params == parsed.params
    assert again.image_urls == parsed.image_urls
    assert again.text == parsed.text
    assert (again.version, again.aspect, again.seed, again.mode) == (
        parsed.version, parsed.aspect, parsed.seed, parsed.mode)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_property_arbitrary_text(prompt: str) -> None:
    _assert_stable(prompt)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_FRAGMENT_PROMPTS)
def test_property_composed_prompts(prompt: str) -> None:
    _assert_stable(prompt)


@settings(max_examples=200)
@given(st.text(alphabet=st.sampled_from(list("{}, -:a1\u2014")), max_size=40))
def test_property_brace_soup(prompt: str) -> None:
    _assert_stable(prompt)
