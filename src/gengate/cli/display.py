"""How the client commands show jobs: one live progress bar per job on a terminal, one
line per change elsewhere, one JSON object per finished job with ``--json``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from gengate.client import Job

__all__ = ["Display", "JsonLines", "Lines", "Bars", "display_for"]


class Display(Protocol):
    """What the job runner tells the person (or script) watching."""

    def submitted(self, key: str, label: str, job_id: str) -> None: ...

    def changed(self, key: str, job: Job) -> None: ...

    def finished(self, key: str, job: Job, files: list[str]) -> None: ...

    def refused(self, key: str, label: str, message: str) -> None: ...

    def __enter__(self) -> Display: ...

    def __exit__(self, *exc: object) -> None: ...


def _percent(job: Job) -> str:
    return "" if job.progress is None else f"{job.progress}%"


def _queue(job: Job) -> str:
    return "" if job.queue_position is None else f"queue #{job.queue_position}"


def _outcome(job: Job, files: list[str]) -> str:
    if not job.succeeded:
        return job.message or job.status
    shown = files or job.files()
    return " ".join(shown) if shown else (job.message or json.dumps(job.data)[:200])


class Lines:
    """Not a terminal: one plain line per change, never wrapped (safe to paste and grep)."""

    def __init__(self, out: Any = None):
        self._out = out or sys.stdout
        self._last: dict[str, tuple[str, str]] = {}

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._out.flush()

    def _line(self, text: str) -> None:
        self._out.write(text.rstrip() + "\n")
        self._out.flush()

    def submitted(self, key: str, label: str, job_id: str) -> None:
        self._line(f"{job_id} submitted {label}")

    def changed(self, key: str, job: Job) -> None:
        state = (job.status, _percent(job))
        if self._last.get(job.id) == state or job.done:
            return
        self._last[job.id] = state
        self._line(f"{job.id} {job.status} {_percent(job)} {_queue(job)}")

    def finished(self, key: str, job: Job, files: list[str]) -> None:
        elapsed = time.monotonic() - job.started
        self._line(f"{job.id} {job.status} {elapsed:.1f}s {_outcome(job, files)}")

    def refused(self, key: str, label: str, message: str) -> None:
        self._line(f"refused {label}: {message}")


class JsonLines(Lines):
    """``--json``: one JSON object per finished job (its fetch body, ``files`` added when
    they were downloaded), nothing else on standard output."""

    def submitted(self, key: str, label: str, job_id: str) -> None:
        pass

    def changed(self, key: str, job: Job) -> None:
        pass

    def finished(self, key: str, job: Job, files: list[str]) -> None:
        body = dict(job.body)
        if files:
            body["files"] = files
        self._line(json.dumps(body, separators=(",", ":")))

    def refused(self, key: str, label: str, message: str) -> None:
        sys.stderr.write(f"refused {label}: {message}\n")


class Bars:
    """A terminal: one live bar per job (status, percent, elapsed, queue position), kept
    on screen once finished, each followed by its outcome."""

    def __init__(self, console: Console):
        self._console = console
        self._progress = Progress(
            TextColumn("{task.description}"),
            TextColumn("[bold]{task.fields[status]:<13}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[queue]}"),
            console=console, refresh_per_second=8,
        )
        self._tasks: dict[str, TaskID] = {}
        self._outcomes: list[str] = []

    def __enter__(self) -> Bars:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        for line in self._outcomes:
            self._console.print(line, soft_wrap=True, highlight=False)

    def _task(self, key: str, label: str) -> TaskID:
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(label, total=100, status="SUBMITTING",
                                                       queue="")
        return self._tasks[key]

    def submitted(self, key: str, label: str, job_id: str) -> None:
        self._progress.update(self._task(key, label), description=f"{label} {job_id[:8]}",
                              status="SUBMITTED")

    def changed(self, key: str, job: Job) -> None:
        self._progress.update(self._task(key, job.id), status=job.status,
                              completed=job.progress or 0, queue=_queue(job))

    def finished(self, key: str, job: Job, files: list[str]) -> None:
        task = self._task(key, job.id)
        style = "green" if job.succeeded else "red"
        self._progress.update(task, status=f"[{style}]{job.status}[/{style}]", queue="",
                              completed=100 if job.succeeded else job.progress or 0)
        self._progress.stop_task(task)
        self._outcomes.append(f"[{style}]{job.status}[/{style}] {job.id} "
                              f"{_outcome(job, files)}")

    def refused(self, key: str, label: str, message: str) -> None:
        task = self._task(key, label)
        self._progress.update(task, status="[red]REFUSED[/red]")
        self._progress.stop_task(task)
        self._outcomes.append(f"[red]refused[/red] {label}: {message}")


def display_for(console: Console, as_json: bool) -> Display:
    if as_json:
        return JsonLines()
    if console.is_terminal:
        return Bars(console)
    return Lines()
