"""A song's musical plan from its tags and lyrics, and its synthesis (numpy).

The tags choose the style: tempo (a genre's range, or an explicit ``120 bpm``), key and
mode (``D minor``, ``F#m``, or the mood words), and the instruments (drums, bass, chords,
lead, voice). The lyrics choose the form: each ``[Verse]``/``[Chorus]``/... section (or
blank-line paragraph) becomes a section whose length follows its line count, and each
line's syllables become the voice's notes. Everything derives from the seed.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["RATE", "Section", "SongPlan", "Style", "plan_song", "style_from_tags",
           "synthesize"]

RATE = 44100
Audio = npt.NDArray[np.float32]

_NOTES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_KEY = re.compile(r"\b([a-g])([#b♯♭]?)\s*(major|minor|maj|min|m)?\b(?!\w)")
_BPM = re.compile(r"\b(\d{2,3})\s*bpm\b")

#: genre word -> (tempo range, minor by default, instruments)
_GENRES: tuple[tuple[frozenset[str], tuple[int, int], bool, frozenset[str]], ...] = (
    (frozenset({"metal", "thrash", "punk"}), (150, 180), True,
     frozenset({"drums", "bass", "power", "lead"})),
    (frozenset({"drum", "dnb", "breakbeat"}), (165, 175), True,
     frozenset({"drums", "bass", "pad"})),
    (frozenset({"edm", "house", "techno", "dance", "trance", "electronic", "synthwave",
                "disco"}), (120, 130), False,
     frozenset({"drums", "four", "bass", "pad", "lead"})),
    (frozenset({"rock", "grunge", "indie"}), (112, 140), False,
     frozenset({"drums", "bass", "power", "lead"})),
    (frozenset({"hip", "hop", "rap", "trap", "boom"}), (82, 96), True,
     frozenset({"drums", "bass", "keys"})),
    (frozenset({"lofi", "lo-fi", "chill", "chillhop"}), (70, 88), False,
     frozenset({"drums", "bass", "keys"})),
    (frozenset({"jazz", "swing", "bossa", "blues", "soul", "funk"}), (92, 124), False,
     frozenset({"drums", "bass", "keys", "swing"})),
    (frozenset({"ballad", "acoustic", "folk", "country", "slow"}), (66, 84), False,
     frozenset({"pluck", "bass", "keys"})),
    (frozenset({"ambient", "classical", "orchestral", "cinematic", "piano"}), (60, 76),
     False, frozenset({"pad", "keys"})),
    (frozenset({"pop", "kpop", "k-pop", "r&b", "rnb"}), (100, 124), False,
     frozenset({"drums", "bass", "keys", "pad"})),
)
_DEFAULT_GENRE = ((96, 120), False, frozenset({"drums", "bass", "keys", "pad"}))
_MINOR_MOODS = frozenset({"sad", "dark", "melancholic", "melancholy", "moody", "minor",
                          "haunting", "gloomy", "epic"})
_MAJOR_MOODS = frozenset({"happy", "bright", "uplifting", "cheerful", "sunny", "major",
                          "joyful"})
_FAST = frozenset({"fast", "upbeat", "energetic", "driving"})
_SLOW = frozenset({"slow", "calm", "relaxed", "mellow", "gentle"})


@dataclass(frozen=True, slots=True)
class Style:
    """What the tags ask for."""

    bpm: int
    tonic: int  #: pitch class of the key, 0 = C
    minor: bool
    instruments: frozenset[str]

    @property
    def key_name(self) -> str:
        names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
        return f"{names[self.tonic]} {'minor' if self.minor else 'major'}"


@dataclass(frozen=True, slots=True)
class Section:
    name: str  #: intro, verse, chorus, bridge, outro, ...
    bars: int
    #: syllable counts of the sung lines (empty: instrumental)
    lines: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class SongPlan:
    style: Style
    sections: tuple[Section, ...]
    voice: str | None  #: "Male", "Female" or None (instrumental)
    seed: int

    @property
    def bar_seconds(self) -> float:
        return 4 * 60.0 / self.style.bpm

    @property
    def duration(self) -> float:
        return sum(s.bars for s in self.sections) * self.bar_seconds


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9#&'-]+", text.lower())


def style_from_tags(tags: str, seed: int) -> Style:
    """Tempo, key and instruments for ``tags`` (free text such as "sad piano ballad,
    72 bpm, in D minor"); what the tags leave open comes from ``seed``."""
    rng = random.Random(seed)
    text = tags.lower()
    words = set(_words(text))
    low_high, minor = _DEFAULT_GENRE[0], _DEFAULT_GENRE[1]
    instruments: frozenset[str] = _DEFAULT_GENRE[2]
    for names, tempo, genre_minor, genre_kit in _GENRES:
        if words & names:
            low_high, minor, instruments = tempo, genre_minor, genre_kit
            break
    low, high = low_high
    if words & _FAST:
        low, high = high, high + 20
    elif words & _SLOW:
        low, high = max(56, low - 16), low
    bpm = rng.randint(low, high)
    explicit = _BPM.search(text)
    if explicit:
        bpm = max(40, min(220, int(explicit.group(1))))
    if words & _MINOR_MOODS:
        minor = True
    elif words & _MAJOR_MOODS:
        minor = False
    tonic = rng.randrange(12)
    key = _key(text)
    if key is not None:
        tonic, minor = key[0], key[1] if key[1] is not None else minor
    kit: set[str] = set(instruments)
    if "piano" in words:
        kit.add("keys")
    if words & {"guitar", "acoustic"}:
        kit.add("pluck")
    if words & {"synth", "synthwave", "808"}:
        kit.add("lead")
    if words & {"no", "without"} and "drums" in words:
        kit.discard("drums")
    return Style(bpm, tonic, minor, frozenset(kit))


def _key(text: str) -> tuple[int, bool | None] | None:
    """``D minor``, ``in F# major``, ``Am``, ``key of Bb``."""
    for match in _KEY.finditer(text):
        letter, accidental, quality = match.groups()
        start = match.start()
        before = text[max(0, start - 7):start]
        # a lone letter is a key only beside a quality word or after "in"/"key of"
        if not quality and not re.search(r"(?:\bin|key of)\s*$", before):
            continue
        pitch = _NOTES[letter] + (1 if accidental in ("#", "♯") else
                                  -1 if accidental in ("b", "♭") else 0)
        minor = None if not quality else quality in ("minor", "min", "m")
        return pitch % 12, minor
    return None


_SECTION = re.compile(r"^\s*[\[(]\s*([a-z][a-z0-9 -]*?)\s*\d*\s*[\])]\s*$", re.IGNORECASE)


def sections_from_lyrics(lyrics: str) -> list[tuple[str, list[str]]]:
    """``[Verse]``-style headed sections, else blank-line paragraphs (alternating verse
    and chorus); each with its sung lines."""
    out: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    headed = any(_SECTION.match(line) for line in lyrics.splitlines())
    paragraph = 0
    for raw in lyrics.splitlines():
        line = raw.strip()
        head = _SECTION.match(line)
        if head:
            current = (head.group(1).strip().lower(), [])
            out.append(current)
        elif not line:
            if not headed:
                current = None
        else:
            if current is None:
                name = "verse" if paragraph % 2 == 0 else "chorus"
                paragraph += 1
                current = (name, [])
                out.append(current)
            current[1].append(line)
    return out


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    count = len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0)
    return max(1, count)


def plan_song(style: Style, lyrics: str, *, voice: str | None, seed: int,
              scale: float = 1.0) -> SongPlan:
    """The song's form: the lyrics' sections (two bars per sung line, whole phrases of
    four bars), framed by an intro and an outro; without lyrics, a pop form."""
    parsed = sections_from_lyrics(lyrics) if lyrics.strip() else []
    sections: list[Section] = []
    if parsed:
        if parsed[0][0] != "intro":
            sections.append(Section("intro", 4))
        for name, lines in parsed:
            sung = tuple(tuple(_syllables(w) for w in _words(line)) or (1,) for line in lines)
            bars = max(4, 4 * math.ceil(2 * len(lines) / 4))
            sections.append(Section(name, bars, sung if voice else ()))
        if parsed[-1][0] != "outro":
            sections.append(Section("outro", 4))
    else:
        form = [("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8),
                ("bridge", 4), ("chorus", 8), ("outro", 4)]
        sections = [Section(name, bars) for name, bars in form]
    plan = SongPlan(style, tuple(sections), voice, seed)
    # a long lyric sheet makes a long song, up to eight minutes, as Suno's do
    while plan.duration > 480 and len(sections) > 2:
        sections.pop(-2)
        plan = SongPlan(style, tuple(sections), voice, seed)
    if scale < 1.0:  # test and preview renders: the same form, fewer bars
        short = tuple(Section(s.name, max(1, round(s.bars * scale)), s.lines)
                      for s in sections)
        plan = SongPlan(style, short, voice, seed)
    return plan


# -- synthesis ---------------------------------------------------------------------------

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
#: scale degrees (0-based) of each section's chord progression
_PROGRESSIONS = {
    False: {"verse": (0, 4, 5, 3), "chorus": (3, 0, 4, 5), "bridge": (5, 3, 0, 4),
            "intro": (0, 3, 0, 4), "outro": (3, 4, 0, 0)},
    True: {"verse": (0, 5, 2, 6), "chorus": (5, 6, 0, 0), "bridge": (3, 4, 0, 6),
           "intro": (0, 5, 0, 6), "outro": (5, 6, 0, 0)},
}


def _freq(midi: float) -> float:
    return float(440.0 * 2 ** ((midi - 69) / 12))


def _env(n: int, attack: float, release: float) -> Audio:
    a = max(1, int(attack * RATE))
    r = max(1, int(release * RATE))
    out = np.ones(n, dtype=np.float32)
    out[:min(a, n)] = np.linspace(0, 1, min(a, n), dtype=np.float32)
    if n > a:
        tail = min(r, n - a)
        out[n - tail:] *= np.linspace(1, 0, tail, dtype=np.float32)
    return out


def _tone(midi: float, seconds: float, kind: str, rng: np.random.Generator) -> Audio:
    n = max(1, int(seconds * RATE))
    t = np.arange(n, dtype=np.float32) / RATE
    f = _freq(midi)
    phase = 2 * np.pi * f * t
    if kind == "saw":
        wave = sum(((-1) ** (k + 1)) * np.sin(k * phase) / k for k in range(1, 8))
        out = np.asarray(wave, dtype=np.float32) * 0.6 * _env(n, 0.01, 0.08)
    elif kind == "pad":
        detune = 2 * np.pi * f * 1.004 * t
        wave = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.7 * np.sin(detune)
        out = wave.astype(np.float32) * 0.35 * _env(n, min(0.4, seconds / 3), 0.3)
    elif kind == "keys":
        decay = np.exp(-t * 3.0).astype(np.float32)
        wave = np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase)
        out = wave.astype(np.float32) * decay * 0.5 * _env(n, 0.005, 0.05)
    elif kind == "pluck":
        decay = np.exp(-t * 6.0).astype(np.float32)
        wave = np.sign(np.sin(phase)) * 0.3 + np.sin(phase)
        out = wave.astype(np.float32) * decay * 0.4 * _env(n, 0.002, 0.03)
    elif kind == "power":
        wave = np.tanh(3 * (np.sin(phase) + np.sin(phase * 1.5)))
        out = wave.astype(np.float32) * 0.25 * _env(n, 0.01, 0.05)
    elif kind == "bass":
        wave = np.sin(phase) + 0.3 * np.sin(2 * phase)
        out = wave.astype(np.float32) * 0.6 * _env(n, 0.01, 0.06)
    else:  # voice: a vowel-like tone with vibrato
        vibrato = 0.4 * np.sin(2 * np.pi * 5.5 * t) * np.clip(t * 3, 0, 1)
        ph = 2 * np.pi * np.cumsum(f * 2 ** (vibrato / 12)) / RATE
        wave = (np.sin(ph) + 0.5 * np.sin(2 * ph) + 0.35 * np.sin(3 * ph)
                + 0.2 * np.sin(5 * ph) + 0.02 * rng.standard_normal(n))
        out = wave.astype(np.float32) * 0.3 * _env(n, 0.04, 0.08)
    return np.asarray(out, dtype=np.float32)


def _add(buf: Audio, start: float, sound: Audio, gain: float = 1.0) -> None:
    i = int(start * RATE)
    if i >= len(buf):
        return
    end = min(len(buf), i + len(sound))
    buf[i:end] += sound[:end - i] * gain


def _drum(kind: str, rng: np.random.Generator) -> Audio:
    if kind == "kick":
        n = int(0.25 * RATE)
        t = np.arange(n) / RATE
        sweep = 2 * np.pi * np.cumsum(50 + 90 * np.exp(-t * 30)) / RATE
        return (np.sin(sweep) * np.exp(-t * 12)).astype(np.float32)
    if kind == "snare":
        n = int(0.18 * RATE)
        t = np.arange(n) / RATE
        body = np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25)
        hit = (rng.standard_normal(n) * 0.6 + body) * np.exp(-t * 18)
        return np.asarray(hit, dtype=np.float32)
    n = int(0.05 * RATE)
    noise = rng.standard_normal(n)
    noise = np.diff(noise, prepend=0.0)  # brighter: a first-order high-pass
    return (noise * np.exp(-np.arange(n) / RATE * 80) * 0.25).astype(np.float32)


@dataclass(slots=True)
class _Mix:
    """The stereo buffers a song is mixed into, and what every bar needs."""

    left: Audio
    right: Audio
    beat: float
    kit: frozenset[str]
    rng: np.random.Generator
    pick: random.Random
    drums: dict[str, Audio]

    def add(self, start: float, sound: Audio, gain_left: float, gain_right: float) -> None:
        _add(self.left, start, sound, gain_left)
        _add(self.right, start, sound, gain_right)


def synthesize(plan: SongPlan) -> Audio:
    """The song as stereo float32 samples in [-1, 1], shape (2, n)."""
    style = plan.style
    rng = np.random.default_rng(plan.seed % 2**63)
    beat = 60.0 / style.bpm
    bar = 4 * beat
    n = int((plan.duration + 1.0) * RATE)
    mix = _Mix(np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32), beat,
               style.instruments, rng, random.Random(plan.seed),
               {k: _drum(k, rng) for k in ("kick", "snare", "hat")})
    scale = _MINOR if style.minor else _MAJOR
    root = 48 + style.tonic  # around C3
    t0 = 0.0
    for section in plan.sections:
        progressions = _PROGRESSIONS[style.minor]
        prog = progressions.get(section.name, progressions["verse"])
        loud = 1.0 if section.name == "chorus" else 0.8 if section.name != "intro" else 0.6
        for b in range(section.bars):
            degree = prog[b % len(prog)]
            chord = [root + scale[(degree + k) % 7] + 12 * ((degree + k) // 7)
                     for k in (0, 2, 4)]
            _bar(mix, section, b, t0 + b * bar, chord, loud, root, scale)
        if section.lines and plan.voice:
            _sing(section, t0, bar, chord_root=root, scale=scale,
                  female=plan.voice == "Female", pick=mix.pick, rng=rng,
                  out=(mix.left, mix.right))
        t0 += section.bars * bar
    stereo = np.stack([mix.left, mix.right])
    peak = float(np.max(np.abs(stereo))) or 1.0
    stereo *= 0.89 / peak
    fade = min(n, int(1.5 * RATE))
    stereo[:, n - fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    return stereo


def _bar(mix: _Mix, section: Section, b: int, start: float, chord: list[int], loud: float,
         root: int, scale: tuple[int, ...]) -> None:
    """One bar of every instrument in the kit."""
    _harmony(mix, section, start, chord, loud)
    kit, beat, rng = mix.kit, mix.beat, mix.rng
    if "bass" in kit and section.name != "intro":
        for step in range(4):
            note = chord[0] - 12 + (7 if step == 2 and mix.pick.random() < 0.4 else 0)
            mix.add(start + step * beat, _tone(note, beat * 0.9, "bass", rng),
                    0.7 * loud, 0.7 * loud)
    if "lead" in kit and section.name in ("chorus", "bridge") and not section.lines:
        for step in range(4):
            note = root + 24 + scale[mix.pick.randrange(7)]
            mix.add(start + step * beat, _tone(note, beat, "saw", rng), 0.15, 0.2)
    if "drums" in kit and (section.name not in ("intro", "outro") or b % 2 == 1):
        _drums(mix, start)


def _harmony(mix: _Mix, section: Section, start: float, chord: list[int],
             loud: float) -> None:
    """The chord instruments: pad, keys, plucked guitar, power chords."""
    kit, beat, rng = mix.kit, mix.beat, mix.rng
    if "pad" in kit:
        for note in chord:
            mix.add(start, _tone(note + 12, 4 * beat, "pad", rng), 0.5 * loud, 0.6 * loud)
    if "keys" in kit:
        for hit in (0, 2) if section.name != "chorus" else (0, 1, 2, 3):
            for note in chord:
                mix.add(start + hit * beat, _tone(note + 12, beat * 1.5, "keys", rng),
                        0.45 * loud, 0.35 * loud)
    if "pluck" in kit:
        for step in range(8):
            note = chord[step % 3] + (12 if step >= 4 else 0)
            mix.add(start + step * beat / 2, _tone(note, beat, "pluck", rng),
                    0.3 * loud, 0.4 * loud)
    if "power" in kit and section.name != "intro":
        for step in range(8):
            mix.add(start + step * beat / 2, _tone(chord[0], beat / 2, "power", rng),
                    0.5 * loud, 0.4 * loud)


def _drums(mix: _Mix, start: float) -> None:
    """Kick on one and three (every beat with ``four``), snare on two and four, eighth
    hats; swung eighths for ``swing``."""
    beat = mix.beat
    four, swing = "four" in mix.kit, "swing" in mix.kit
    for step in range(8):
        at = start + step * beat / 2
        if swing and step % 2:
            at += beat / 6
        if step % 2 == 0 and (four or step in (0, 4) or
                              (step == 6 and mix.pick.random() < 0.3)):
            mix.add(at, mix.drums["kick"], 0.9, 0.9)
        if step in (2, 6):
            mix.add(at, mix.drums["snare"], 0.35, 0.4)
        mix.add(at, mix.drums["hat"], 0.5, 0.3)


def _sing(section: Section, t0: float, bar: float, *, chord_root: int,
          scale: tuple[int, ...], female: bool, pick: random.Random,
          rng: np.random.Generator, out: tuple[Audio, Audio]) -> None:
    """One note per syllable, each line across two bars, a melody that moves by steps."""
    base = chord_root + (24 if female else 12)
    degree = 2
    for i, line in enumerate(section.lines):
        start = t0 + 2 * bar * i
        if start >= t0 + section.bars * bar:
            break
        count = max(1, min(16, sum(line)))
        length = 1.75 * bar / count
        for k in range(count):
            degree = max(0, min(9, degree + pick.choice((-1, 0, 1, 1, -2, 2))))
            note = base + scale[degree % 7] + 12 * (degree // 7)
            sound = _tone(note, length * 0.95, "voice", rng)
            _add(out[0], start + k * length, sound, 0.5)
            _add(out[1], start + k * length, sound, 0.5)
