"""The OpenAI Chat Completions protocol (``/v1/chat/completions``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gengate.llm.accounts import LlmAccount
from gengate.llm.pricing import Usage
from gengate.llm.protocol import Protocol

__all__ = ["OPENAI", "OpenAIProtocol"]

_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
    403: "permission_error", 404: "not_found_error", 413: "invalid_request_error",
    429: "rate_limit_error", 529: "server_error",
}
_CODES = {401: "invalid_api_key", 402: "insufficient_quota", 404: "model_not_found"}


class OpenAIProtocol(Protocol):
    """Base URLs include the version, as the SDKs take them: ``https://host/v1``."""

    kind = "openai"
    #: OpenAI answers a bad key with this message start and code ``invalid_api_key``
    unauthorized = "Incorrect API key provided"

    def url(self, account: LlmAccount, path: str) -> str:
        return account.base_url + path.removeprefix("/v1")

    def auth_headers(self, account: LlmAccount) -> dict[str, str]:
        return {"authorization": f"Bearer {account.api_key}"}

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        return {"error": {"message": message, "type": kind, "param": None,
                          "code": _CODES.get(status)}}

    def stream_error(self, message: str, status: int = 500) -> bytes:
        return b"data: " + orjson.dumps(self.error_body(status, message)) + b"\n\n"

    def usage_from_event(self, data: Mapping[str, Any], usage: Usage) -> None:
        self.usage_from_body(data, usage)

    @staticmethod
    def with_usage(body: dict[str, Any]) -> bool:
        """Ask a stream for its usage chunk; True if the client asked for it itself."""
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            return True
        body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                  "include_usage": True}
        return False


OPENAI = OpenAIProtocol()
