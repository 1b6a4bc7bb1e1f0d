"""Moving results from the local directory into the object store: each job's files are
copied, then its stored URLs switched in one conditional update. Progress lives in the jobs
themselves (a moved result records ``store: s3``), so a move that was interrupted picks up
where it stopped when run again, and files already copied whole are not sent twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gengate.errors import BadRequest, NotFound
from gengate.objectstore import PART_SIZE, ObjectStorage
from gengate.results import result_files
from gengate.resultstores import ResultStores
from gengate.storage import LocalStorage
from gengate.store import Store
from gengate.store.resultrows import StoredResult

__all__ = ["MoveReport", "move_results"]


@dataclass(slots=True)
class MoveReport:
    moved: int = 0  # jobs whose URLs now point at the object store
    already: int = 0  # jobs moved by an earlier run
    files: int = 0  # files copied by this run
    bytes: int = 0
    missing: list[str] = field(default_factory=list)  # keys in neither store: job not moved

    def as_dict(self) -> dict[str, Any]:
        return {"moved": self.moved, "already": self.already, "files": self.files,
                "bytes": self.bytes, "missing": self.missing}


async def move_results(store: Store, stores: ResultStores, *, batch: int = 200,
                       delete_local: bool = False,
                       on_job: Callable[[str], None] | None = None) -> MoveReport:
    """Copy every unexpired successful job's local files to the object store and switch
    its URLs; with ``delete_local``, remove the local copies of switched jobs."""
    if stores.objects is None:
        raise BadRequest("GENGATE_STORAGE_URL is not set: there is no object store to move "
                         "results to")
    report = MoveReport()
    after = ""
    while page := await store.stored_results(after, batch):
        for row in page:
            after = row.job_id
            await _move(store, stores.local, stores.objects, row, report, delete_local)
            if on_job is not None:
                on_job(row.job_id)
    return report


async def _move(store: Store, local: LocalStorage, objects: ObjectStorage, row: StoredResult,
                report: MoveReport, delete_local: bool) -> None:
    result = row.result
    files = result_files(result)
    if not files:
        return
    if result.get("store") == objects.name:
        report.already += 1
        return
    sizes = {key: await _local_size(local, key) for key in files}
    for key, size in sizes.items():
        if size is None and not await _exists(objects, key):
            report.missing.append(key)
    if any(key in report.missing for key in files):
        return  # a file in neither store: the job keeps its URLs, nothing is copied
    for key, size in sizes.items():
        if size is not None:
            await _copy(local, objects, key, size, report)
    url = objects.url_for(files[0])
    switched = {**result, "store": objects.name, "files": files, "cdnImage": url}
    if result.get("discordImage") == result.get("cdnImage"):
        switched["discordImage"] = url
    if result.get("images"):
        switched["images"] = [objects.url_for(key) for key in files[1:]]
    if not await store.switch_result(row.job_id, row.raw, switched):
        return  # the job changed meanwhile (its result expired): the next run decides
    report.moved += 1
    if delete_local:
        for key in files:
            await local.delete(key)


async def _local_size(local: LocalStorage, key: str) -> int | None:
    try:
        return (await local.stat(key)).size
    except NotFound:
        return None


async def _exists(objects: ObjectStorage, key: str) -> bool:
    try:
        await objects.stat(key)
        return True
    except NotFound:
        return False


async def _copy(local: LocalStorage, objects: ObjectStorage, key: str, size: int,
                report: MoveReport) -> None:
    """Copy one file unless the object store has it whole already (an earlier run)."""
    try:
        if (await objects.stat(key)).size == size:
            return
    except NotFound:
        pass
    content_type = (await local.stat(key)).content_type
    if size <= PART_SIZE:
        await objects.put(key, await local.get(key), content_type)
    else:
        await objects.put_stream(key, local.read(key, 0, size), content_type)
    report.files += 1
    report.bytes += size
