"""Fake Anthropic and OpenAI upstreams: real HTTP servers on 127.0.0.1 for tests and benches.

``async with FakeAnthropic() as up:`` serves ``/v1/messages`` (plain and SSE, with tool
use when the request has ``tools``) and ``/v1/messages/count_tokens``; ``FakeOpenAI``
serves ``/v1/chat/completions``. Token counts, delays and failures are attributes:
``plan`` is consumed one entry per request (a status code, ``(status, {headers})``,
``"close"`` to drop the connection before answering, ``"drop"`` to drop a stream after its
first events, ``"hang"`` to never answer); afterwards requests succeed.

What the real APIs do, and the fakes therefore do too:

- every answer carries the upstream's request id (Anthropic ``request-id``, OpenAI
  ``x-request-id``) and its rate-limit state (Anthropic ``anthropic-ratelimit-requests-*``
  and ``-tokens-*``, OpenAI ``x-ratelimit-*-requests`` and ``-tokens``): Anthropic API docs,
  "Errors" (request id) and "Rate limits" (response headers); OpenAI API reference,
  "Debugging requests" and "Rate limits";
- errors are ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with 429
  ``rate_limit_error`` and 529 ``overloaded_error`` (Anthropic "Errors"), OpenAI's
  ``{"error": {"message", "type", "param", "code"}}`` (OpenAI "Error codes"); a
  ``Retry-After`` goes only where the plan gives one (the APIs send it with 429s, not
  with every error);
- the model answers a request that offers ``tools`` with a ``tool_use`` (``tool_calls``)
  unless the conversation's last turn already carries the tools' results, which it then
  answers with text: a scripted stand-in for a model's choice. ``tool_call`` names the
  tool and its input (default: the first tool offered, ``{"q": "x"}``).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson

from gengate.testing.http import LocalServer, read_request

__all__ = ["FakeAnthropic", "FakeOpenAI", "FakeLlmUpstream", "UpstreamRequest"]

CLOSE, DROP, HANG = "close", "drop", "hang"
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
            529: "Overloaded"}


class UpstreamRequest:
    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        self.method, self.path, self.headers, self.body = method, path, headers, body

    def json(self) -> Any:
        return orjson.loads(self.body)


class FakeLlmUpstream(LocalServer):
    """The HTTP/1.1 server (keep-alive, chunked streams); subclasses speak a protocol."""

    def __init__(self, *, input_tokens: int = 12, output_tokens: int = 7,
                 cache_write_tokens: int = 0, cache_read_tokens: int = 0, chunks: int = 3,
                 first_byte_delay: float = 0.0, chunk_delay: float = 0.0,
                 plan: list[Any] | None = None, record: bool = True):
        self.input_tokens, self.output_tokens = input_tokens, output_tokens
        self.cache_write_tokens, self.cache_read_tokens = cache_write_tokens, cache_read_tokens
        self.chunks, self.first_byte_delay, self.chunk_delay = chunks, first_byte_delay, chunk_delay
        self.plan = list(plan or [])
        self.tool_call: tuple[str, dict[str, Any]] | None = None
        self.record = record
        self.requests: list[UpstreamRequest] = []
        self.disconnected = asyncio.Event()  # a client went away in the middle of a stream
        self.streams_finished = 0
        self._stop = asyncio.Event()
        self._ids = itertools.count(1)
        self.port = 0

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()  # streams waiting on their next event end now
        await super().__aexit__(*exc)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self._stop.is_set():
                request = UpstreamRequest(*await read_request(reader))
                if self.record:
                    self.requests.append(request)
                if not await self._answer(request, reader, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _answer(self, request: UpstreamRequest, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        action = self.plan.pop(0) if self.plan else 200
        if action == CLOSE:
            return False
        if action == HANG:
            await self._stop.wait()
            return False
        if self.first_byte_delay:
            await asyncio.sleep(self.first_byte_delay)
        if action not in (200, DROP):
            status, extra = action if isinstance(action, tuple) else (action, {})
            self._send(writer, status, orjson.dumps(self.error(status)), extra)
            return True
        if request.method == "GET" and request.path.split("?")[0] == "/v1/models":
            self._send(writer, 200, orjson.dumps(self.model_list()))
            return True
        try:
            body = request.json()
        except orjson.JSONDecodeError:
            self._send(writer, 400, orjson.dumps(self.error(400)))
            return True
        if body.get("stream"):
            return await self._stream(writer, reader, body, drop=action == DROP)
        self._send(writer, 200, orjson.dumps(self.reply(request.path, body)))
        return True

    def _send(self, writer: asyncio.StreamWriter, status: int, payload: bytes,
              extra: dict[str, str] | None = None) -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'X')}",
                "content-type: application/json", f"content-length: {len(payload)}",
                *self.meta_headers(), *(f"{k}: {v}" for k, v in (extra or {}).items())]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)

    async def _stream(self, writer: asyncio.StreamWriter, reader: asyncio.StreamReader,
                      body: dict[str, Any], drop: bool) -> bool:
        meta = "".join(f"{h}\r\n" for h in self.meta_headers()).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n" + meta
                     + b"\r\n")
        for n, event in enumerate(self.events(body)):
            if n and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            if reader.at_eof() or writer.is_closing():
                self.disconnected.set()
                return False
            if drop and n == 3:
                return False  # the connection closes mid-body: an incomplete chunked stream
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        self.streams_finished += 1
        return True

    def texts(self) -> list[str]:
        return [f"word{i} " for i in range(self.chunks)]

    #: what ``GET /v1/models`` lists
    models: tuple[str, ...] = ()
    #: the request id of the latest answer
    request_id = ""

    def wants_tool(self, body: dict[str, Any]) -> bool:
        """Offered tools, and the last turn is not their results."""
        messages = body.get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        content = last.get("content")
        answered = last.get("role") == "tool" or (isinstance(content, list) and any(
            isinstance(c, dict) and c.get("type") == "tool_result" for c in content))
        return bool(body.get("tools")) and not answered

    def tool(self, body: dict[str, Any], name_of: Any) -> tuple[str, dict[str, Any]]:
        if self.tool_call is not None:
            return self.tool_call
        return name_of(body["tools"][0]), {"q": "x"}

    # protocol-specific
    def meta_headers(self) -> list[str]:
        raise NotImplementedError

    def error(self, status: int) -> dict[str, Any]:
        raise NotImplementedError

    def model_list(self) -> dict[str, Any]:
        raise NotImplementedError

    def reply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def events(self, body: dict[str, Any]) -> list[bytes]:
        raise NotImplementedError


def _sse(kind: str | None, data: Any) -> bytes:
    head = f"event: {kind}\n".encode() if kind else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


class FakeAnthropic(FakeLlmUpstream):
    """Anthropic Messages: the exact event sequence of a streamed message."""

    models = ("claude-fake-1", "claude-fake-2")

    def model_list(self) -> dict[str, Any]:
        data = [{"type": "model", "id": m, "display_name": m,
                 "created_at": "2025-01-01T00:00:00Z"} for m in self.models]
        return {"data": data, "has_more": False, "first_id": self.models[0],
                "last_id": self.models[-1]}

    def meta_headers(self) -> list[str]:
        self.request_id = f"req_fake{next(self._ids)}"
        return [f"request-id: {self.request_id}",
                "anthropic-ratelimit-requests-limit: 4000",
                "anthropic-ratelimit-requests-remaining: 3999",
                "anthropic-ratelimit-requests-reset: 2026-01-01T00:00:01Z",
                "anthropic-ratelimit-tokens-limit: 400000",
                "anthropic-ratelimit-tokens-remaining: 399000",
                "anthropic-ratelimit-tokens-reset: 2026-01-01T00:00:01Z"]

    def error(self, status: int) -> dict[str, Any]:
        kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error",
                400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        message = "Overloaded" if status == 529 else f"fake upstream {status}"
        return {"type": "error", "error": {"type": kind, "message": message},
                "request_id": f"req_fake_error{status}"}

    #: of the cache writes, how many were 1-hour ones (the usage object's
    #: ``cache_creation`` split; Anthropic docs, "Prompt caching")
    cache_write_1h_tokens = 0

    def usage(self, output: int) -> dict[str, Any]:
        hour = self.cache_write_1h_tokens
        return {"input_tokens": self.input_tokens, "output_tokens": output,
                "cache_creation_input_tokens": self.cache_write_tokens,
                "cache_read_input_tokens": self.cache_read_tokens,
                "cache_creation": {"ephemeral_5m_input_tokens": self.cache_write_tokens - hour,
                                   "ephemeral_1h_input_tokens": hour}}

    def _message(self, body: dict[str, Any], content: list[Any], stop: str | None,
                 output: int) -> dict[str, Any]:
        return {"id": f"msg_fake{next(self._ids)}", "type": "message", "role": "assistant",
                "model": body.get("model"), "content": content, "stop_reason": stop,
                "stop_sequence": None, "usage": self.usage(output)}

    def reply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/count_tokens"):
            return {"input_tokens": self.input_tokens}
        if self.wants_tool(body):
            tool, args = self.tool(body, lambda t: t["name"])
            content = [{"type": "tool_use", "id": "toolu_fake1", "name": tool, "input": args}]
            return self._message(body, content, "tool_use", self.output_tokens)
        text = "".join(self.texts())
        return self._message(body, [{"type": "text", "text": text}], "end_turn",
                             self.output_tokens)

    def events(self, body: dict[str, Any]) -> list[bytes]:
        tool = self.tool(body, lambda t: t["name"]) if self.wants_tool(body) else None
        start = self._message(body, [], None, 1)
        out = [_sse("message_start", {"type": "message_start", "message": start})]
        if tool:
            block = {"type": "tool_use", "id": "toolu_fake1", "name": tool[0], "input": {}}
            args = orjson.dumps(tool[1]).decode()
            cut = len(args) // 2
            deltas = [{"type": "input_json_delta", "partial_json": part}
                      for part in (args[:cut], args[cut:])]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": t} for t in self.texts()]
        out.append(_sse("content_block_start",
                        {"type": "content_block_start", "index": 0, "content_block": block}))
        out.append(_sse("ping", {"type": "ping"}))
        out += [_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": d}) for d in deltas]
        out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        out.append(_sse("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": self.output_tokens}}))
        out.append(_sse("message_stop", {"type": "message_stop"}))
        return out


class FakeOpenAI(FakeLlmUpstream):
    """OpenAI Chat Completions, with the usage chunk when ``stream_options`` asks."""

    models = ("gpt-fake-1",)

    def model_list(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 1735689600,
                                            "owned_by": "fake"} for m in self.models]}

    def meta_headers(self) -> list[str]:
        self.request_id = f"req_fake{next(self._ids)}"
        return [f"x-request-id: {self.request_id}", "x-ratelimit-limit-requests: 5000",
                "x-ratelimit-remaining-requests: 4999", "x-ratelimit-reset-requests: 12ms",
                "x-ratelimit-limit-tokens: 800000", "x-ratelimit-remaining-tokens: 799000",
                "x-ratelimit-reset-tokens: 75ms"]

    def error(self, status: int) -> dict[str, Any]:
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        return {"error": {"message": f"fake upstream {status}", "type": kind,
                          "param": None, "code": None}}

    def usage(self) -> dict[str, Any]:
        cached = self.cache_read_tokens
        return {"prompt_tokens": self.input_tokens + cached,
                "completion_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + cached + self.output_tokens,
                "prompt_tokens_details": {"cached_tokens": cached}}

    def _tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        if not self.wants_tool(body):
            return None
        name, args = self.tool(body, lambda t: t["function"]["name"])
        return [{"index": 0, "id": "call_fake1", "type": "function",
                 "function": {"name": name, "arguments": orjson.dumps(args).decode()}}]

    def reply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        calls = self._tool_calls(body)
        message: dict[str, Any] = {"role": "assistant",
                                   "content": None if calls else "".join(self.texts())}
        if calls:
            message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"}
                                     for c in calls]
        return {"id": f"chatcmpl-fake{next(self._ids)}", "object": "chat.completion",
                "created": 1735689600, "model": body.get("model"),
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": self.usage()}

    def events(self, body: dict[str, Any]) -> list[bytes]:
        base = {"id": f"chatcmpl-fake{next(self._ids)}", "object": "chat.completion.chunk",
                "created": 1735689600, "model": body.get("model")}
        calls = self._tool_calls(body)
        first = {"role": "assistant", "content": "" if not calls else None}
        deltas = [first, *([{"tool_calls": calls}] if calls else
                           [{"content": t} for t in self.texts()])]
        out = [_sse(None, {**base, "choices": [{"index": 0, "delta": d,
                                                "finish_reason": None}]}) for d in deltas]
        out.append(_sse(None, {**base, "choices": [{
            "index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            out.append(_sse(None, {**base, "choices": [], "usage": self.usage()}))
        out.append(b"data: [DONE]\n\n")
        return out
