"""The one place errors become responses, for every front: a :class:`GengateError` keeps
its status, message, headers and data; anything else is logged and answered as a 500
without detail. Each front only chooses the body's shape (the TTAPI envelope, Anthropic's
or OpenAI's error object)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gengate.errors import GengateError

__all__ = ["BodyShape", "Rendered", "render_error", "ttapi_error"]

log = logging.getLogger("gengate.api")

#: a front's error body from (status, message, data)
BodyShape = Callable[[int, str, Any], dict[str, Any]]


def ttapi_error(status: int, message: str, data: Any) -> dict[str, Any]:
    """The TTAPI envelope of a failure."""
    return {"status": "FAILED", "message": message, "data": data}


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    payload: bytes
    headers: dict[str, str]


def render_error(exc: BaseException, shape: BodyShape = ttapi_error,
                 where: str = "", crash_message: str | None = None) -> Rendered:
    """The response for ``exc`` in the front's ``shape`` (``crash_message``: what a
    front says of an unexpected error; default, TTAPI's)."""
    if not isinstance(exc, GengateError):
        log.error("event=request_crashed path=%s", where, exc_info=exc)
        exc = GengateError(crash_message)
    body = shape(exc.status_code, exc.message, exc.data)
    return Rendered(exc.status_code, orjson.dumps(body), dict(exc.headers))
