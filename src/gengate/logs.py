"""How gengate's long-running processes log: one format, to standard error.

``gengate serve``, ``gengate worker`` and ``gengate dispatch`` configure logging with
:func:`logging_config` before anything logs, so a worker node's lines look like an API
node's. gengate's own loggers (``gengate.*``, lines of ``key=value`` pairs) log at the
configured level (``GENGATE_LOG_LEVEL``, INFO by default); the HTTP server's own only from
WARNING.
"""

from __future__ import annotations

import logging.config
from typing import Any

__all__ = ["FORMAT", "configure", "logging_config"]

#: every line: time, level, logger, message
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The :func:`logging.config.dictConfig` of a gengate process (uvicorn takes it as its
    ``log_config``)."""
    handler = {"handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gengate": {"format": FORMAT}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "gengate",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "gengate": {"level": level, **handler},
            "uvicorn": {"level": "WARNING", **handler},
        },
    }


def configure(level: str = "INFO") -> None:
    """Configure this process's logging (see the module's docstring)."""
    logging.config.dictConfig(logging_config(level))
