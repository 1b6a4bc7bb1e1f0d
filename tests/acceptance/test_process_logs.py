"""The long-running processes log alike: `gengate serve` and `gengate worker` (real
processes) write gengate's INFO lines to standard error in one format (gengate.logs)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from gengate.testing import free_port

#: time, level, logger, message (gengate.logs.FORMAT); a loose data directory is tightened
#: at start-up, which gengate logs at INFO
TIGHTENED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO gengate "
                       r"event=data_permissions_tightened path=(?P<path>\S+) mode=700")
#: what `gengate worker` prints once it runs
RUNNING = "running; Ctrl+C or SIGTERM stops it"


def _up(command: list[str], line: str) -> bool:
    """The process is past its start-up: the worker says so; serve (which prints nothing
    of its own) has logged its start-up."""
    return RUNNING in line if command[0] == "worker" else bool(TIGHTENED.search(line))


@pytest.mark.parametrize("command", [["serve", "--no-worker"], ["worker"]])
async def test_gengate_lines_at_info_in_one_format(tmp_path: Path, command: list[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env.update(GENGATE_DATA_DIR=str(data), GENGATE_PORT=str(free_port()))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gengate", *command, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not lines or not _up(command, lines[-1]):
                line = await proc.stdout.readline()
                assert line, f"gengate {command[0]} ended: {''.join(lines)}"
                lines.append(line.decode(errors="replace"))
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = await proc.communicate()
        lines.append(rest.decode(errors="replace"))
    found = [m for line in lines for m in [TIGHTENED.match(line)] if m]
    assert found and found[0]["path"] == str(data), "".join(lines)
