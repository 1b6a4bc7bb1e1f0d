"""Giving freed memory back to the system.

glibc's malloc serves a large allocation from its heap instead of a mapping of its own once a
block of that size has been freed before (its mmap threshold adapts upwards, to 32 MiB), and a
heap seldom shrinks: after a burst of multi-megabyte request bodies and images the process
would keep its peak for good, and the heaps of several threads would add up. Fixing the
threshold at 1 MiB makes every such buffer a mapping of its own, unmapped when it is freed.

A threshold the operator set (``MALLOC_MMAP_THRESHOLD_``) is left alone, as is any other C
library.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["return_large_buffers"]

_M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
THRESHOLD = 1024 * 1024


def return_large_buffers(threshold: int = THRESHOLD) -> bool:
    """Have allocations of ``threshold`` bytes or more mapped on their own (glibc only);
    whether the setting took effect."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # absent from musl
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
