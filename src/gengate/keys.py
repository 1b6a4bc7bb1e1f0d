"""API keys: how they look, and how they are stored (a SHA-256 hash, never the key)."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["hash_key", "new_key"]

PREFIX = "gg-"


def new_key() -> str:
    """A fresh key with 256 bits of randomness."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
