"""How gengate's long-running processes log: one format, to standard error.

``gengate serve``, ``gengate worker`` and ``gengate dispatch`` call :func:`configure` before
anything logs, so a worker node's lines look like an API node's. gengate's own loggers
(``gengate.*``, lines of ``key=value`` pairs) log at the configured level
(``GENGATE_LOG_LEVEL``, INFO by default); the HTTP server's own only from WARNING.

A line is formatted where it is logged but written by a thread of its own: standard error
is often a pipe, and a pipe whose reader falls behind would otherwise stop the event loop
(every request and job of the process) at the next line.
"""

from __future__ import annotations

import atexit
import logging.config
import queue
import sys
from logging.handlers import QueueHandler, QueueListener
from typing import Any

__all__ = ["FORMAT", "configure", "logging_config"]

#: every line: time, level, logger, message
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The :func:`logging.config.dictConfig` of a gengate process."""
    handler = {"handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gengate": {"format": FORMAT}},
        "handlers": {"stderr": {"()": stderr_in_background, "formatter": "gengate"}},
        "loggers": {
            "gengate": {"level": level, **handler},
            "uvicorn": {"level": "WARNING", **handler},
        },
    }


def configure(level: str = "INFO") -> None:
    """Configure this process's logging (see the module's docstring)."""
    logging.config.dictConfig(logging_config(level))


def stderr_in_background() -> logging.Handler:
    """A handler that formats a record and leaves it to a thread writing standard error;
    what is left is written when the process exits."""
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(lines, logging.StreamHandler(sys.stderr))
    listener.start()
    atexit.register(listener.stop)
    return QueueHandler(lines)
