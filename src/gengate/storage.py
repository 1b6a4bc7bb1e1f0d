"""Result storage: every result file is copied here before its job turns SUCCESS.

The default is a local directory served by gengate at ``/cdn/<key>``; keys are made of the
job's random id, so the URLs are unguessable. ``gengate.objectstore`` is the other backend,
an S3-compatible bucket. Both write a file whole or not at all: a reader never sees half.
"""

from __future__ import annotations

import asyncio
import email.utils
import mimetypes
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gengate.errors import NotFound

__all__ = ["LocalStorage", "Storage", "StoredFile", "check_key", "content_type_of"]

#: bytes per chunk when a file is read or streamed
CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What a store knows of one file, for serving it."""

    size: int
    content_type: str
    etag: str | None = None
    last_modified: str | None = None  # an HTTP date


class Storage(Protocol):
    """One backend for result files; ``name`` is recorded with each result (``store``)."""

    name: str

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``key`` and return its public URL."""

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes],
                         content_type: str) -> str:
        """Store what ``chunks`` yields under ``key``; the file appears only once complete."""

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``NotFound`` if there are none."""

    async def stat(self, key: str) -> StoredFile:
        """Size and type of the file under ``key``; ``NotFound`` if there is none."""

    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of the file under ``key``."""

    async def delete(self, key: str) -> None:
        """Remove the file under ``key``; a missing file is not an error."""

    def url_for(self, key: str) -> str: ...


def check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise NotFound("file not found")


def content_type_of(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class LocalStorage:
    """Files in a directory; ``url_for`` points at gengate's own ``/cdn`` route."""

    name = "local"

    def __init__(self, root: Path, base_url: str):
        self.root = root
        self.base_url = base_url.rstrip("/")

    def path_for(self, key: str) -> Path:
        check_key(key)
        return self.root / key

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/cdn/{key}"

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        await asyncio.to_thread(self._write, self.path_for(key), [data])
        return self.url_for(key)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes],
                         content_type: str) -> str:
        parts = [chunk async for chunk in chunks]
        await asyncio.to_thread(self._write, self.path_for(key), parts)
        return self.url_for(key)

    @staticmethod
    def _write(path: Path, parts: list[bytes]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                for part in parts:
                    fh.write(part)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound("file not found") from exc

    async def stat(self, key: str) -> StoredFile:
        path = self.path_for(key)
        try:
            info = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound("file not found") from exc
        if not path.is_file():
            raise NotFound("file not found")
        etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        return StoredFile(info.st_size, content_type_of(key), etag,
                          email.utils.formatdate(info.st_mtime, usegmt=True))

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        try:
            fh = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound("file not found") from exc
        try:
            await asyncio.to_thread(fh.seek, start)
            left = end - start
            while left > 0:
                chunk = await asyncio.to_thread(fh.read, min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            # closed here and now: a player that drops the connection mid-file leaves this
            # generator to be finalized, possibly after the event loop is gone
            fh.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_for(key).unlink, missing_ok=True)
