"""Charts drawn on the server as inline SVG (no script, no style attribute: the CSP allows
neither)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Bar", "bars", "days_back"]

DAY = 86_400


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    #: a CSS class for the bar (colours live in the stylesheet)
    tone: str = "bar"
    title: str = ""


def days_back(now: float, days: int) -> list[str]:
    """The last ``days`` UTC dates, oldest first (``YYYY-MM-DD``)."""
    today = int(now // DAY)
    return [time.strftime("%Y-%m-%d", time.gmtime(d * DAY))
            for d in range(today - days + 1, today + 1)]


def bars(items: Sequence[Bar], *, height: int = 120, label: str = "", full: float | None = None,
         min_height: float = 0.0) -> str:
    """A bar chart scaled to its tallest bar (or ``full``), each bar titled for screen
    readers and hover."""
    width = max(len(items) * 10, 10)
    top = full if full is not None else max((b.value for b in items), default=0.0)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
             f'role="img" aria-label="{escape(label)}">']
    for i, bar in enumerate(items):
        h = 0.0 if top <= 0 else max(bar.value / top * (height - 2), 0.0)
        if bar.value > 0 or min_height:
            h = max(h, min_height or 1.5)
        title = escape(bar.title or f"{bar.label}: {bar.value:g}")
        parts.append(f'<rect class="{escape(bar.tone)}" x="{i * 10 + 1}" y="{height - h:.1f}" '
                     f'width="8" height="{h:.1f}"><title>{title}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)
