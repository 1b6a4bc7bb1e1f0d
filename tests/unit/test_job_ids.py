"""Job ids: UUIDs in the contract's 36-character form, version 7 (time first, so new jobs
are appended at the end of the tables' indexes), random and unique; and the typed options
stored in a job's params."""

from __future__ import annotations

import os
import re
import time
import uuid

from gengate.jobs import EngineOptions, new_job_id
from gengate.products.midjourney.options import MidjourneyOptions

SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_ids_are_version_7_uuids_in_time_order() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_job_id() for _ in range(5000)]  # more than one draw of random bits
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for job_id in ids:
        assert SHAPE.match(job_id), job_id
        parsed = uuid.UUID(job_id)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == job_id
        assert before <= int(job_id[:8] + job_id[9:13], 16) <= after
    stamps = [job_id[:13] for job_id in ids]
    assert stamps == sorted(stamps)
    # the 74 bits after the time are random: no two ids of one millisecond share them
    assert len({job_id[14:] for job_id in ids}) == len(ids)


def test_a_forked_child_draws_its_own_ids() -> None:
    new_job_id()  # the parent holds random bits in its pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next ids and leave at once
        os.write(write, " ".join(new_job_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    child = os.read(read, 4096).decode().split()
    os.close(read)
    mine = [new_job_id() for _ in range(3)]
    assert len(child) == 3
    assert {c[14:] for c in child}.isdisjoint(m[14:] for m in mine)


def test_options_round_trip_through_params() -> None:
    options = MidjourneyOptions(version="6.1", aspect=(4, 5), seed=7)
    assert options.to_json() == {"version": "6.1", "aspect": [4, 5], "seed": 7, "url": None,
                                 "parent_seed": None}
    assert MidjourneyOptions.from_json({**options.to_json(), "sync": True}) == \
        MidjourneyOptions(version="6.1", aspect=[4, 5], seed=7)
    # the engine's keys: only those that differ from the defaults join the params
    engine = EngineOptions(hook_progress=True, failed_on=(3,), orphans=([1, "t"],))
    params = engine.merged_into({"seed": 7, "sync": True, "hook_progress": False})
    assert params == {"seed": 7, "hook_progress": True, "failed_on": [3],
                      "orphans": [[1, "t"]]}
    assert EngineOptions().merged_into({"seed": 1}) == {"seed": 1}
    assert EngineOptions.from_json(params) == EngineOptions(
        hook_progress=True, failed_on=[3], orphans=[[1, "t"]])
