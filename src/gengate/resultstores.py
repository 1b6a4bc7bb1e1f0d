"""The stores result files live in: the one new results go to, and the local directory,
which keeps serving (and retention keeps cleaning) results written before an object store
was configured, until ``gengate results move`` has copied them."""

from __future__ import annotations

from dataclasses import dataclass

from gengate.config import Settings
from gengate.errors import NotFound
from gengate.objectstore import ObjectStorage, ObjectStoreConfig
from gengate.storage import LocalStorage, Storage

__all__ = ["ResultStores"]


@dataclass(frozen=True, slots=True)
class ResultStores:
    primary: Storage
    local: LocalStorage
    objects: ObjectStorage | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultStores:
        local = LocalStorage(settings.data_dir / "cdn", settings.resolved_public_url())
        if not settings.storage_url:
            return cls(local, local)
        objects = ObjectStorage(ObjectStoreConfig(
            url=settings.storage_url, access_key=settings.storage_access_key,
            secret_key=settings.storage_secret_key, region=settings.storage_region,
            serve=settings.storage_serve, public_url=settings.storage_public_url,
            presign_seconds=settings.storage_presign_seconds,
        ), settings.resolved_public_url())
        return cls(objects, local, objects)

    def named(self, name: str | None) -> Storage:
        """The store a result records as its ``store`` (results before it: local)."""
        if name == "s3":
            if self.objects is None:
                raise NotFound("the result is in an object store that is not configured")
            return self.objects
        return self.local

    async def get(self, key: str, store: str | None = None) -> bytes:
        """A stored file's bytes, from the store the result names, else either."""
        if store is not None:
            return await self.named(store).get(key)
        try:
            return await self.primary.get(key)
        except NotFound:
            if self.primary is self.local:
                raise
            return await self.local.get(key)
