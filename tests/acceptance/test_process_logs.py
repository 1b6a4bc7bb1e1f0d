"""The long-running processes log alike: `gengate serve` and `gengate worker` (real
processes) write gengate's INFO lines to standard error in one format (gengate.logs)."""

from __future__ import annotations

import re
from pathlib import Path

from tests import processes

#: time, level, logger, message (gengate.logs.FORMAT); a loose data directory is tightened
#: at start-up, which gengate logs at INFO
TIGHTENED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO gengate "
                       r"event=data_permissions_tightened path=(?P<path>\S+) mode=700$", re.M)


def _loose_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    return data


def _tightened(output: str) -> list[str]:
    return [m["path"] for m in TIGHTENED.finditer(output)]


async def test_serve_logs_gengate_lines_at_info(tmp_path: Path) -> None:
    data = _loose_data_dir(tmp_path)
    node = await processes.serve(processes.gengate_env(data), "--no-worker",
                                 log=tmp_path / "serve.log")
    try:
        # logged before the server answered; written by the process's log thread
        await node.until_output("event=data_permissions_tightened")
        assert _tightened(node.output()) == [str(data)], node.output()
    finally:
        await node.shutdown()


async def test_the_worker_logs_as_serve_does(tmp_path: Path) -> None:
    data = _loose_data_dir(tmp_path)
    node = processes.start(processes.gengate_env(data), "worker", log=tmp_path / "worker.log")
    try:
        await node.until_output("running; Ctrl+C or SIGTERM stops it")
        await node.until_output("event=data_permissions_tightened")
        assert _tightened(node.output()) == [str(data)], node.output()
    finally:
        await node.shutdown()
