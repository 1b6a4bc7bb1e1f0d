"""The Anthropic Messages protocol (``/v1/messages``): upstream calls and error shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gengate.llm.accounts import LlmAccount
from gengate.llm.pricing import Usage
from gengate.llm.protocol import Protocol

__all__ = ["ANTHROPIC", "AnthropicProtocol", "error_type"]

DEFAULT_VERSION = "2023-06-01"

_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
    413: "request_too_large", 415: "invalid_request_error", 429: "rate_limit_error",
    504: "timeout_error", 529: "overloaded_error",
}


def error_type(status: int) -> str:
    return _TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


class AnthropicProtocol(Protocol):
    kind = "anthropic"
    #: what Anthropic's API answers (type ``authentication_error``) for a bad key
    unauthorized = "invalid x-api-key"

    def url(self, account: LlmAccount, path: str) -> str:
        return account.base_url + path

    def auth_headers(self, account: LlmAccount) -> dict[str, str]:
        return {"x-api-key": account.api_key}

    def headers(self, account: LlmAccount, client: list[tuple[bytes, bytes]]) -> dict[str, str]:
        out = super().headers(account, client)
        out.setdefault("anthropic-version", DEFAULT_VERSION)
        return out

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": error_type(status), "message": message}}

    def stream_error(self, message: str, status: int = 500) -> bytes:
        payload = orjson.dumps(self.error_body(status, message))
        return b"event: error\ndata: " + payload + b"\n\n"

    def usage_from_event(self, data: Mapping[str, Any], usage: Usage) -> None:
        """``message_start`` carries the input side, ``message_delta`` the final counts."""
        kind = data.get("type")
        if kind == "message_start":
            message = data.get("message")
            if isinstance(message, Mapping):
                self.usage_from_body(message, usage)
        elif kind == "message_delta":
            self.usage_from_body(data, usage)


ANTHROPIC = AnthropicProtocol()
