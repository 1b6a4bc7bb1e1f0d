"""Credentials sealed at rest: round trip, rotation, a wrong key, and the key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gengate.credentials import CredentialBox, load_key
from gengate.errors import GengateError


def test_seal_open_and_rotate() -> None:
    old = CredentialBox(["old passphrase"])
    token = old.seal({"secret": "s3cr3t", "empty": ""})
    assert token is not None and "s3cr3t" not in token
    assert old.open(token) == {"secret": "s3cr3t"}
    assert old.seal({"secret": ""}) is None and old.open(None) == {}
    both = CredentialBox([Fernet.generate_key().decode(), "old passphrase"])
    rotated = both.rotate(token)
    assert both.open(rotated) == {"secret": "s3cr3t"}
    with pytest.raises(GengateError) as caught:
        old.open(rotated)  # sealed with the new key only
    assert "s3cr3t" not in caught.value.message
    assert "s3cr3t" not in repr(old)


def test_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    first = load_key(None, tmp_path / "data")
    assert load_key(None, tmp_path / "data") == first
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "secret.key").st_mode)
    assert mode == 0o600
    assert load_key(" a , b ,", tmp_path) == ["a", "b"]
