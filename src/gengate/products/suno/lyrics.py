"""Lyrics written on this machine (the lyrics endpoint, inspiration mode and
``auto_lyrics``): a verse, a chorus, a second verse, the chorus again and a bridge, built
from the prompt's own words, deterministic from the seed."""

from __future__ import annotations

import random
import re

__all__ = ["title_for", "write_lyrics"]

_STOP = frozenset("a an the of and or to in on at for with about by from is are be song "
                  "music track make write sing style genre beat vocals vocal".split())
_OPENINGS = ("I remember", "We were chasing", "Under the", "All I see is", "Tell me about",
             "Through the", "Every night the", "Hold on to")
_ENDINGS = ("tonight", "again", "in the light", "all along", "forever", "like before",
            "when the morning comes", "and we carry on")


def _themes(prompt: str) -> list[str]:
    words = [w for w in re.findall(r"[A-Za-z']+", prompt.lower())
             if w not in _STOP and len(w) > 2]
    return list(dict.fromkeys(words)) or ["heart", "road", "night"]


def title_for(prompt: str) -> str:
    """A short title from the prompt's strongest words."""
    themes = _themes(prompt)[:3]
    return " ".join(w.capitalize() for w in themes)[:80]


def write_lyrics(prompt: str, seed: int) -> str:
    """Lyrics with ``[Verse]``, ``[Chorus]`` and ``[Bridge]`` headings."""
    rng = random.Random(seed)
    themes = _themes(prompt)

    def line() -> str:
        word = themes[rng.randrange(len(themes))]
        return f"{rng.choice(_OPENINGS)} {word} {rng.choice(_ENDINGS)}"

    hook = f"{themes[0].capitalize()}, {themes[0]}, {rng.choice(_ENDINGS)}"
    chorus = [hook, line(), hook, line()]
    parts = [("Verse", [line() for _ in range(4)]), ("Chorus", chorus),
             ("Verse", [line() for _ in range(4)]), ("Chorus", chorus),
             ("Bridge", [line(), line()]), ("Chorus", chorus)]
    return "\n\n".join(f"[{name}]\n" + "\n".join(lines) for name, lines in parts)
