"""gengate.prompt.WordFilter: hits, obfuscations, no false positives, list loading."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gengate.errors import BannedPrompt
from gengate.products.midjourney.prompt import WordFilter

DEFAULT = WordFilter.default()
SMALL_WORDS = ("nude", "sex", "boob", "full frontal", "x-rated", "rule34", "kkk", "rapist")
SMALL = WordFilter(SMALL_WORDS)


@pytest.mark.parametrize(("text", "entry"), [
    ("a nude statue", "nude"),
    ("A NUDE statue", "nude"),
    ("Nude.", "nude"),
    ("(nude)", "nude"),
    ("nudes at the beach", "nude"),
    ("sexes", "sex"),
    ("boobs", "boob"),
    ("a full frontal view", "full frontal"),
    ("FULL   Frontal", "full frontal"),
    ("an x-rated scene", "x-rated"),
    ("xrated", "x-rated"),
    ("rule34 art", "rule34"),
    ("kkk rally", "kkk"),
    ("a rapist", "rapist"),
    ("semi-nude", "nude"),
    ("nude,sex", "nude"),
])
def test_plain_hits(text: str, entry: str) -> None:
    assert SMALL.find(text) == entry


@pytest.mark.parametrize(("text", "entry"), [
    ("n.u.d.e", "nude"),
    ("n-u-d-e", "nude"),
    ("n_u_d_e", "nude"),
    ("n*u*d*e", "nude"),
    ("nu.de", "nude"),
    ("n u d e", "nude"),
    ("a n u d e girl", "nude"),
    ("s e x", "sex"),
    ("nuuuude", "nude"),
    ("NNUUDDEE", "nude"),
    ("sexxx", "sex"),
    ("booooobs", "boob"),
    ("nud3", "nude"),
    ("n00d", None),
    ("nu d3", None),
    ("s3x", "sex"),
    ("$ex", "sex"),
    ("5ex", "sex"),
    ("b00b", "boob"),
    ("b0obs", "boob"),
    ("r@pist", "rapist"),
    ("r4p1st", "rapist"),
    ("r@p1s7", "rapist"),
    ("n.u.d.3", "nude"),
    ("n u d 3", "nude"),
    ("f.u.l.l frontal", "full frontal"),
    ("fuuull fr0ntal", "full frontal"),
    ("n\u00fcde", "nude"),
    ("nu\u200bde", "nude"),
    ("\uff4e\uff55\uff44\uff45", "nude"),
])
def test_obfuscations(text: str, entry: str | None) -> None:
    assert SMALL.find(text) == entry


@pytest.mark.parametrize("text", [
    "class", "classic Scunthorpe skyline", "a therapist's office", "assassin creed",
    "a brass sextant",
    "Essex countryside", "Sussex", "Middlesex", "bob the builder", "a nudge", "sexton",
    "unisex clothing", "kk", "boo", "a denuded hillside", "nu", "s ex", "full-frontal-lobe",
    "frontal full", "x rated", "455", "1488", "the 3 sex0phones",
])
def test_no_false_positives(text: str) -> None:
    assert SMALL.find(text) is None, text


@pytest.mark.parametrize("text", [
    "class", "Scunthorpe", "therapist", "assassin", "sextant", "Essex", "cocktail", "shitake",
    "a majestic lion on a rocky cliff at sunset, golden hour, cinematic, 8k, highly detailed",
    "magna cum laude", "blue tits in a tree", "heroines of the revolution", "chicken breasts",
    "a Gothic cathedral with groin vaults", "paint stripper", "the erection of a monument",
    "kinky hair", "Janus, god of doors", "Analyst at work", "a cocky rooster",
])
def test_default_list_has_no_false_positives(text: str) -> None:
    assert DEFAULT.find(text) is None, text


@pytest.mark.parametrize(("text", "entry"), [
    ("a nude painting", "nude"),
    ("NSFW", "nsfw"),
    ("p0rn", "porn"),
    ("a gory scene", "gory"),
    ("decapitated knight", "decapitated"),
    ("wearing nothing but a smile", "wearing nothing"),
    ("h.e.n.t.a.i", "hentai"),
    ("swastika flag", "swastika"),
])
def test_default_list_hits(text: str, entry: str) -> None:
    assert DEFAULT.find(text) == entry


def test_default_list_size() -> None:
    assert 60 <= len(DEFAULT) <= 150
    assert "nude" in DEFAULT.entries


def test_check_raises_banned_prompt_naming_the_word() -> None:
    with pytest.raises(BannedPrompt) as caught:
        SMALL.check("a N.U.D.E statue")
    assert caught.value.message.startswith("[Banned prompt detected] ")
    assert "[nude]" in caught.value.message
    assert caught.value.status_code == 400
    SMALL.check("a dressed statue")


def test_from_file_reads_comments_and_phrases(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# operator list\n\nbanana  # fruit\n  Hot Dog \n#nude\n", encoding="utf-8")
    words = WordFilter.from_file(path)
    assert words.entries == ("banana", "Hot Dog")
    assert len(words) == 2
    assert words.find("a BANANAS split") == "banana"
    assert words.find("a hot-dog") is None
    assert words.find("hot  d0g stand") == "hot dog"
    assert words.find("a nude") is None
    assert WordFilter.from_text("").find("anything") is None


def test_default_is_cached() -> None:
    assert WordFilter.default() is DEFAULT


def test_word_filter_lives_in_prompt_filter() -> None:
    from gengate.products.midjourney.prompt import filter as prompt_filter

    assert WordFilter is prompt_filter.WordFilter


@pytest.mark.parametrize("text", [
    "a nude statue", "n.u.d.e", "a n u d e girl", "fuuull fr0ntal", "a dressed statue",
    "a full moon", "full frontal", "the full frontal", "x y z",
])
def test_repeated_text_gives_the_same_answer(text: str) -> None:
    fresh = WordFilter(SMALL_WORDS)
    assert [fresh.find(text) for _ in range(3)] == [SMALL.find(text)] * 3


def test_known_harmless_words_do_not_hide_a_phrase_or_a_spelled_word() -> None:
    words = WordFilter(["full frontal", "nude"])
    assert words.find("full moon over the sea") is None
    assert words.find("over the sea") is None
    assert words.find("a full frontal view") == "full frontal"
    assert words.find("x y z") is None
    assert words.find("n u d e") == "nude"
    assert words.find("x y z") is None


def test_remembered_tokens_are_bounded() -> None:
    from gengate.products.midjourney.prompt import filter as prompt_filter

    words = WordFilter(["nude"])
    for n in range(prompt_filter._CACHE_SIZE // 20 + 50):
        text = " ".join(f"w{n}x{i}" for i in range(25))
        assert words.find(text) is None
    assert len(words._clean) <= prompt_filter._CACHE_SIZE + 25
    assert words.find("w1x1 nude") == "nude"


@settings(max_examples=200)
@given(st.text(alphabet=st.sampled_from(list("nudesx.-_ 3@$ab")), max_size=30))
def test_property_cached_answers_match_a_fresh_filter(text: str) -> None:
    fresh = WordFilter(SMALL_WORDS)
    assert SMALL.find(text) == fresh.find(text) == SMALL.find(text)


@settings(max_examples=300)
@given(st.text())
def test_property_find_never_raises(text: str) -> None:
    found = DEFAULT.find(text)
    assert found is None or found in {entry.lower() for entry in DEFAULT.entries}
