"""Result files in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, Ceph, Alibaba OSS
in S3 mode), through obstore: a Rust client with native async calls, multipart uploads and
presigned URLs.

An object appears under its key only when its upload completes (a single PUT, or the
completion of a multipart upload), so a worker killed mid-upload leaves nothing at the key;
the parts of an unfinished multipart upload are invisible and are removed by the bucket's
lifecycle rule for incomplete uploads.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store

from gengate.errors import NotFound, StorageUnavailable
from gengate.storage import StoredFile, check_key, content_type_of

__all__ = ["ObjectStorage", "ObjectStoreConfig"]

Serve = Literal["proxy", "redirect", "public"]

log = logging.getLogger("gengate.storage")

#: uploads larger than this go up as a multipart upload, in parts of this size
PART_SIZE = 8 * 1024 * 1024
RETRIES = 3
RETRY_FOR = datetime.timedelta(seconds=20)


@dataclass(frozen=True, slots=True)
class ObjectStoreConfig:
    """Where the bucket is and how clients reach its objects."""

    url: str
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"
    serve: Serve = "proxy"
    public_url: str | None = None
    presign_seconds: int = 300

    def parts(self) -> tuple[str | None, str, str]:
        """(endpoint or None for AWS, bucket, key prefix) of ``url``."""
        split = urlsplit(self.url)
        path = [p for p in split.path.split("/") if p]
        if split.scheme == "s3":
            bucket, rest = split.netloc, path
        elif split.scheme in ("http", "https") and split.netloc and path:
            bucket, rest = path[0], path[1:]
        else:
            raise ValueError("GENGATE_STORAGE_URL must be s3://bucket[/prefix] or "
                             "http(s)://endpoint/bucket[/prefix]")
        if not bucket:
            raise ValueError("GENGATE_STORAGE_URL names no bucket")
        endpoint = None if split.scheme == "s3" else f"{split.scheme}://{split.netloc}"
        return endpoint, bucket, "/".join(rest)


def _failed(op: str, key: str, exc: Exception) -> StorageUnavailable:
    """The error clients see for a store that failed (after obstore's own retries of
    timeouts and 5xx answers), logged with the store's reason (which holds no secret)."""
    log.warning("event=object_store_failed op=%s key=%s error=%s: %.300s", op, key,
                type(exc).__name__, exc)
    return StorageUnavailable()


def _http_date(value: datetime.datetime | None) -> str | None:
    return email.utils.format_datetime(value, usegmt=True) if value is not None else None


class ObjectStorage:
    """A bucket (and optional key prefix); result URLs follow ``config.serve``."""

    name = "s3"

    def __init__(self, config: ObjectStoreConfig, base_url: str):
        endpoint, bucket, prefix = config.parts()
        if config.serve == "public" and not config.public_url:
            raise ValueError("GENGATE_STORAGE_SERVE=public needs GENGATE_STORAGE_PUBLIC_URL")
        options: dict[str, Any] = {"region": config.region}
        if endpoint is not None:
            options["endpoint"] = endpoint
            options["virtual_hosted_style_request"] = False
        if config.access_key and config.secret_key:
            options["access_key_id"] = config.access_key
            options["secret_access_key"] = config.secret_key
        self.config = config
        self.store = S3Store(
            bucket, prefix=prefix or None,
            client_options={"allow_http": endpoint is not None
                            and endpoint.startswith("http://"),
                            "timeout": "60s", "connect_timeout": "10s"},
            # timeouts and 5xx answers are retried, for 20 s at most: a store that is down
            # fails the request instead of holding it for minutes
            retry_config={"max_retries": RETRIES, "retry_timeout": RETRY_FOR},
            **options)
        self.base_url = base_url.rstrip("/")

    def url_for(self, key: str) -> str:
        if self.config.serve == "public":
            return f"{(self.config.public_url or '').rstrip('/')}/{key}"
        return f"{self.base_url}/cdn/{key}"

    async def presign(self, key: str) -> str:
        """A URL that reads the object for ``presign_seconds``, without credentials."""
        check_key(key)
        try:
            return await obstore.sign_async(
                self.store, "GET", key, datetime.timedelta(seconds=self.config.presign_seconds))
        except Exception as exc:  # noqa: BLE001 - obstore raises its own kinds
            raise _failed("presign", key, exc) from exc

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        check_key(key)
        await self._put(key, data, content_type)
        return self.url_for(key)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes],
                         content_type: str) -> str:
        check_key(key)
        await self._put(key, chunks, content_type, multipart=True)
        return self.url_for(key)

    async def _put(self, key: str, body: bytes | AsyncIterable[bytes], content_type: str,
                   multipart: bool | None = None) -> None:
        try:
            await obstore.put_async(self.store, key, body,
                                    attributes={"Content-Type": content_type},
                                    use_multipart=multipart, chunk_size=PART_SIZE)
        except Exception as exc:  # noqa: BLE001 - obstore raises its own kinds
            raise _failed("put", key, exc) from exc

    async def get(self, key: str) -> bytes:
        check_key(key)
        try:
            result = await obstore.get_async(self.store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            raise NotFound("file not found") from exc
        except Exception as exc:  # noqa: BLE001 - obstore raises its own kinds
            raise _failed("get", key, exc) from exc

    async def stat(self, key: str) -> StoredFile:
        check_key(key)
        try:
            meta = await obstore.head_async(self.store, key)
        except FileNotFoundError as exc:
            raise NotFound("file not found") from exc
        except Exception as exc:  # noqa: BLE001 - obstore raises its own kinds
            raise _failed("stat", key, exc) from exc
        # HEAD gives no attributes through obstore; the type follows from the key, which
        # is also the type every result was stored with
        return StoredFile(meta["size"], content_type_of(key), meta["e_tag"],
                          _http_date(meta["last_modified"]))

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        check_key(key)
        if end <= start:
            return
        try:
            result = await obstore.get_async(self.store, key, options={"range": (start, end)})
            stream = result.stream(min_chunk_size=256 * 1024)
        except FileNotFoundError as exc:
            raise NotFound("file not found") from exc
        except Exception as exc:  # noqa: BLE001 - obstore raises its own kinds
            raise _failed("read", key, exc) from exc
        async for chunk in stream:
            yield bytes(chunk)

    async def delete(self, key: str) -> None:
        check_key(key)
        try:
            await obstore.delete_async(self.store, key)
        except FileNotFoundError:
            return
        except Exception as exc:  # noqa: BLE001 - obstore raises its own kinds
            raise _failed("delete", key, exc) from exc
