"""HTTP ``Range`` requests (RFC 9110 section 14) for result files: one byte range, served
the same by every storage backend."""

from __future__ import annotations

import re

__all__ = ["RangeNotSatisfiable", "parse_range"]

_ONE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(Exception):
    """The range starts past the end of the file (answered 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of the one range ``header`` asks for, or None to
    send the whole file: no header, another unit, several ranges or a malformed one (a
    server may ignore such a header). Raises ``RangeNotSatisfiable`` for a range that
    selects nothing of a ``size``-byte file."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _ONE.match(spec)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(0, size - count), size
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable()
    return start, min(int(last) + 1 if last else size, size)
