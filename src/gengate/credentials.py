"""Upstream credentials sealed at rest.

Account secrets (a midjourney-proxy ``mj-api-secret``, a TTAPI key) and users' webhook
signing secrets are stored encrypted
with Fernet (AES-128-CBC with an HMAC-SHA256 tag) under a key from configuration, and are
opened only in the worker that talks to the upstream. The key setting may list several
keys separated by commas: the first seals, all of them open, so a key is rotated by putting
the new one first and running ``gengate admin accounts reseal``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gengate.errors import GengateError

__all__ = ["CredentialBox", "load_key"]


class CredentialBox:
    """Seals and opens credential dicts."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(_fernet_key(k)) for k in keys])

    def __repr__(self) -> str:
        return "CredentialBox(<sealed>)"

    def seal(self, values: Mapping[str, str]) -> str | None:
        clean = {k: v for k, v in values.items() if v}
        if not clean:
            return None
        return self._fernet.encrypt(orjson.dumps(clean)).decode("ascii")

    def seal_text(self, value: str) -> str:
        """One secret (a webhook signing secret) sealed on its own."""
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def open_text(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise GengateError(
                "[Internal error] a stored secret cannot be opened with the configured "
                "secret key"
            ) from None

    def rotate(self, token: str) -> str:
        """The same credentials sealed with the first key (after a key rotation)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            raise GengateError(
                "[Internal error] an account's credentials cannot be opened with the "
                "configured secret key"
            ) from None

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            data = orjson.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError):
            # the message names no secret: only that the key does not fit
            raise GengateError(
                "[Internal error] an account's credentials cannot be opened with the "
                "configured secret key"
            ) from None
        return {str(k): str(v) for k, v in data.items()}


def _fernet_key(text: str) -> bytes:
    """A Fernet key as given, or one derived from any other passphrase."""
    raw = text.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def load_key(setting: str | None, data_dir: Path) -> list[str]:
    """The keys from the setting, or a key kept in the data directory (made on first use).

    The file is enough for one node; nodes that share a database must share the key, so
    scale-out deployments set ``GENGATE_SECRET_KEY``.
    """
    if setting:
        return [k.strip() for k in setting.split(",") if k.strip()]
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".secret.key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
        try:
            os.link(tmp, path)  # whole or not at all; the first process to start wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return [path.read_text().strip()]
