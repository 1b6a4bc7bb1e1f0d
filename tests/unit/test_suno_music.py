"""The song plan: tags choose tempo, key and instruments; lyrics choose the form."""

from __future__ import annotations

from gengate.products.suno.music import plan_song, sections_from_lyrics, style_from_tags


def test_tags_set_tempo_key_and_instruments() -> None:
    style = style_from_tags("sad piano ballad, 72 bpm, in D minor", seed=1)
    assert (style.bpm, style.key_name) == (72, "D minor")
    assert {"keys", "bass"} <= style.instruments and "drums" not in style.instruments
    assert style_from_tags("happy pop in F# major", seed=2).key_name == "F# major"
    assert style_from_tags("dark trap, key of Bb", seed=3).key_name == "A# minor"
    # a genre's own tempo range when no bpm is given, whatever the seed
    for seed in range(20):
        assert 150 <= style_from_tags("thrash metal", seed).bpm <= 180
        edm = style_from_tags("deep house", seed)
        assert 120 <= edm.bpm <= 130 and "four" in edm.instruments
    # a lone letter is not a key ("a song" stays in the seed's key)
    assert style_from_tags("a song", 5) == style_from_tags("song", 5)
    assert "drums" not in style_from_tags("rock without drums", 1).instruments


def test_lyrics_set_the_form() -> None:
    lyrics = "[Verse]\none\ntwo\nthree\n\n[Chorus]\nla la\nla la\n\n[Bridge 2]\noh\n"
    assert [(name, len(lines)) for name, lines in sections_from_lyrics(lyrics)] == [
        ("verse", 3), ("chorus", 2), ("bridge", 1)]
    # without headings, paragraphs alternate verse and chorus
    assert [n for n, _ in sections_from_lyrics("a\nb\n\nc\n\nd")] == [
        "verse", "chorus", "verse"]
    style = style_from_tags("pop, 120 bpm", 1)
    plan = plan_song(style, lyrics, voice="Male", seed=1)
    assert [(s.name, s.bars) for s in plan.sections] == [
        ("intro", 4), ("verse", 8), ("chorus", 4), ("bridge", 4), ("outro", 4)]
    assert plan.duration == 24 * 2.0  # 24 bars of two seconds at 120 BPM
    assert plan.sections[1].lines[0] == (1,)  # one syllable: "one"
    instrumental = plan_song(style, lyrics, voice=None, seed=1)
    assert all(not s.lines for s in instrumental.sections)
    # no lyrics: a pop form of 52 bars
    assert sum(s.bars for s in plan_song(style, "", voice=None, seed=1).sections) == 52
