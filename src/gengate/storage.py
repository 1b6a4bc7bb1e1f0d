"""Result storage: every result file is copied here before its job turns SUCCESS.

The default is a local directory served by gengate at ``/cdn/<key>``; keys are made of the
job's random id, so the URLs are unguessable.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Protocol

from gengate.errors import NotFound

__all__ = ["LocalStorage", "Storage"]


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``key`` and return its public URL."""

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``NotFound`` if there are none."""

    def url_for(self, key: str) -> str: ...


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise NotFound("file not found")


class LocalStorage:
    """Files in a directory; ``url_for`` points at gengate's own ``/cdn`` route."""

    def __init__(self, root: Path, base_url: str):
        self.root = root
        self.base_url = base_url.rstrip("/")

    def path_for(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/cdn/{key}"

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        await asyncio.to_thread(self._write, self.path_for(key), data)
        return self.url_for(key)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise NotFound("file not found") from exc
