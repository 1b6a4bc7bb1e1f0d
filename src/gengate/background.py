"""Background tasks whose failures are never lost.

A task that nobody awaits hides its exception until the garbage collector reports "Task
exception was never retrieved", long after the fact and without a restart. Every
long-lived or fire-and-forget task of gengate is started here instead: :func:`spawn`
logs a failure as soon as the task ends with one, and :func:`supervise` also starts a
loop again after a pause, so one bad pass cannot silently stop the worker, the
dispatcher or the database maintenance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["RESTART_AFTER", "spawn", "supervise", "watch"]

log = logging.getLogger("gengate.background")

#: seconds a supervised loop waits before it starts again after a failure
RESTART_AFTER = 1.0


def watch(task: asyncio.Task[Any]) -> asyncio.Task[Any]:
    """Log ``task``'s exception (and so mark it retrieved) when it ends with one."""
    task.add_done_callback(_report)
    return task


def _report(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("event=task_failed task=%s error=%s", task.get_name(), type(exc).__name__,
                  exc_info=exc)


def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Start ``coro`` as a task whose failure is logged."""
    return watch(asyncio.create_task(coro, name=name))


def supervise(loop: Callable[[], Coroutine[Any, Any, None]], name: str,
              restart_after: float = RESTART_AFTER) -> asyncio.Task[None]:
    """Run ``loop()`` until cancelled: when it raises, log the failure and, after
    ``restart_after`` seconds, run it again; when it returns, stop."""
    return watch(asyncio.create_task(_supervised(loop, name, restart_after), name=name))


async def _supervised(loop: Callable[[], Coroutine[Any, Any, None]], name: str,
                      restart_after: float) -> None:
    while True:
        try:
            await loop()
            return
        except Exception:
            log.exception("event=loop_failed task=%s restart_in=%g", name, restart_after)
        await asyncio.sleep(restart_after)
