"""The one error hierarchy of gengate.

Every error a client can see is a :class:`GengateError`. Each class carries the HTTP status
it is answered with and a public message; one handler in the API renders any of them in the
TTAPI envelope ``{"status": "FAILED", "message": ..., "data": null}``.

::

    GengateError (500)
     ├── BadRequest (400)
     │    ├── InvalidParameter (400)      "[Invalid parameter] ..." prompt grammar
     │    ├── BannedPrompt (400)          "[Banned prompt detected] ..."
     │    ├── NoAvailableAccounts (400)
     │    └── UnsupportedMediaType (415)
     ├── Unauthorized (401)
     ├── InsufficientBalance (402)
     ├── Forbidden (403)
     ├── NotFound (404)
     ├── MethodNotAllowed (405)
     ├── Conflict (409)
     ├── RequestTimeout (408)
     ├── PayloadTooLarge (413)
     ├── RateLimited (429)
     ├── QueueFull (499)
     ├── UpstreamError (500)             a provider failed; message is public
     └── GatewayTimeout (504)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AUTH_MESSAGE",
    "BadRequest",
    "BannedPrompt",
    "Conflict",
    "DatabaseUnavailable",
    "Forbidden",
    "GatewayTimeout",
    "GengateError",
    "InsufficientBalance",
    "InvalidParameter",
    "MethodNotAllowed",
    "NoAvailableAccounts",
    "NotFound",
    "PayloadTooLarge",
    "QueueFull",
    "RateLimited",
    "RequestTimeout",
    "StorageUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "UpstreamError",
]

AUTH_MESSAGE = "Wrong TT-API-KEY or email is not activated."


class GengateError(Exception):
    """Base of every error gengate answers to a client."""

    status_code: int = 500
    message: str = "TTAPI service exception"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None,
                 data: Any = None):
        self.message = message if message is not None else type(self).message
        self.headers = headers or {}
        #: the envelope's ``data`` (e.g. the jobId of a synchronous call that timed out)
        self.data = data
        super().__init__(self.message)


class BadRequest(GengateError):
    status_code = 400
    message = "Parameter error"


class InvalidParameter(BadRequest):
    """A prompt parameter that Midjourney would refuse."""

    message = "[Invalid parameter] Invalid value"


class BannedPrompt(BadRequest):
    message = "[Banned prompt detected] Sorry! Our AI moderator thinks this prompt is not allowed."


class NoAvailableAccounts(BadRequest):
    message = "No available accounts"


class UnsupportedMediaType(BadRequest):
    status_code = 415
    message = "Content-Type must be application/json"


class Unauthorized(GengateError):
    status_code = 401
    message = AUTH_MESSAGE


class InsufficientBalance(GengateError):
    status_code = 402
    message = "Insufficient balance"


class Forbidden(GengateError):
    status_code = 403
    message = "Account Block"


class NotFound(GengateError):
    status_code = 404
    message = "Not found"


class MethodNotAllowed(GengateError):
    status_code = 405
    message = "Method not allowed"


class Conflict(GengateError):
    status_code = 409
    message = "Conflict"


class RequestTimeout(GengateError):
    status_code = 408
    message = "Request body not received in time"


class PayloadTooLarge(GengateError):
    status_code = 413
    message = "Request body too large"


class RateLimited(GengateError):
    status_code = 429
    message = "Too many requests"


class QueueFull(GengateError):
    status_code = 499
    message = "Insufficient queues: your in-progress jobs reached max_queue"


class UpstreamError(GengateError):
    status_code = 500
    message = "TTAPI service exception"


class GatewayTimeout(GengateError):
    status_code = 504
    message = "Timeout"


class DatabaseUnavailable(GengateError):
    """The database did not answer for now: no connection free in time, a connection lost,
    SQLite's file locked or its disk failing. Asking again later may work (a job that meets
    it is not failed: it is given back and run again)."""

    status_code = 503
    message = "[Service unavailable] the database did not answer; try again shortly"


class StorageUnavailable(GengateError):
    """The object store holding result files did not answer as it should."""

    status_code = 502
    message = "[Internal error] the result store is unavailable"
