"""Sign-in passwords for the console: argon2id hashes (argon2-cffi's defaults, RFC 9106's
low-memory profile), never the password itself."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gengate.errors import BadRequest

__all__ = ["MIN_LENGTH", "check_new", "hash_password", "verify_password"]

MIN_LENGTH = 8
MAX_LENGTH = 256
_hasher = PasswordHasher()
#: verified against when the email is unknown, so a wrong email costs as long as a wrong
#: password (no timing hint of which emails exist)
_DUMMY = _hasher.hash("not a password of anyone")


def check_new(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise BadRequest(f"password: must be {MIN_LENGTH} to {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_new(password)
    return _hasher.hash(password)


def verify_password(encoded: str | None, password: str) -> bool:
    """Whether ``password`` matches ``encoded`` (``None``: no password set; still spends
    the time of one verification)."""
    try:
        return _hasher.verify(encoded or _DUMMY, password[:MAX_LENGTH]) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
