"""The data directory and the SQLite database: readable by the owner only.

The database holds every user's balance and ledger, key hashes and sealed secrets; the
directory holds the secret key file and results. Both are created owner-only (0700 for
directories, 0600 for files, whatever the umask), and ones found open to others are
tightened at start-up. SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["private_dir", "private_sqlite_file"]

log = logging.getLogger("gengate")

DIR_MODE, FILE_MODE = 0o700, 0o600


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:
        try:
            path.chmod(current & ~0o077 | mode)
            log.info("event=data_permissions_tightened path=%s mode=%o", path, mode)
        except PermissionError:
            log.warning("event=data_permissions_open path=%s mode=%o", path, current)


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) created owner-only; an existing one tightened."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_sqlite_file(database_url: str) -> Path | None:
    """The SQLite database file of ``database_url`` created owner-only before SQLite opens
    it (and an existing one, with its -wal and -shm files, tightened); None for other
    databases and in-memory ones."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    path = Path(url.database)
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if each.exists():
            _tighten(each, FILE_MODE)
    return path
