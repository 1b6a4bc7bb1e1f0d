"""The LLM front (``/v1/messages``, ``/v1/chat/completions``, ...), served as plain ASGI.

No framework per request and no response object: a stream is written to the client as
``http.response.body`` messages, event by event as the upstream sends them, while a
watcher waits on ``receive()`` for ``http.disconnect`` and cancels the upstream call when
the client goes away. Errors are answered in each protocol's own format: Anthropic's
``{"type": "error", "error": {...}}`` or OpenAI's ``{"error": {...}}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from gengate.api.envelope import ClientGone, read_body
from gengate.api.errors import render_error
from gengate.api.schemas import MAX_PAGE
from gengate.api.ttapi import Call, admit_caller, parse_query
from gengate.background import spawn
from gengate.errors import (
    BadRequest,
    NotFound,
)
from gengate.keyring import LLM_PRODUCT
from gengate.keys import KeyPolicy
from gengate.llm.anthropic import ANTHROPIC
from gengate.llm.openai import OPENAI
from gengate.llm.protocol import Protocol, UpstreamReply, passed_headers
from gengate.llm.relay import LlmCall, Prepared, Relay, StreamReply, usage_history
from gengate.quota import from_milli
from gengate.runtime import Runtime

__all__ = ["LlmFront"]

log = logging.getLogger("gengate.api")

_JSON = (b"content-type", b"application/json")
_SSE = [(b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


async def _send_bytes(send: Any, status: int, body: bytes,
                      headers: list[tuple[bytes, bytes]]) -> None:
    raw = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _until_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


@dataclass(slots=True)
class Request:
    scope: dict[str, Any]
    receive: Any
    send: Any
    protocol: Protocol
    rt: Runtime
    user_id: int = 0
    started: bool = False
    key: KeyPolicy | None = None

    @property
    def relay(self) -> Relay:
        if self.rt.relay is None:
            raise NotFound("the LLM relay has no upstream accounts configured")
        return self.rt.relay

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def answer(self, body: Any, status: int = 200) -> None:
        self.started = True
        await _send_bytes(self.send, status, orjson.dumps(body), [_JSON])


Handler = Callable[["LlmFront", Request], Awaitable[None]]


class LlmFront:
    """Serves the LLM paths; anything else goes to ``fallback``."""

    def __init__(self, runtime: Callable[[], Runtime], max_body: int, fallback: Any):
        self._runtime = runtime
        self._max_body = max_body
        self._fallback = fallback

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = _route(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self._fallback(scope, receive, send)
            return
        methods, protocol, handler = route
        if protocol is None:
            protocol = ANTHROPIC if _has(scope, b"anthropic-version") else OPENAI
        if scope["method"] not in methods:
            allowed = ", ".join(methods)
            body = protocol.error_body(405, f"method {scope['method']} not allowed; use {allowed}")
            await _send_bytes(send, 405, orjson.dumps(body), [_JSON, (b"allow", allowed.encode())])
            return
        req = Request(scope, receive, send, protocol, self._runtime())
        try:
            # same keys, same per-key and per-address limits as the TTAPI front; every
            # path but the usage list is the `llm` product
            call = Call("", b"", scope["headers"])
            principal = await admit_caller(req.rt, call, scope, None if handler is
                                           LlmFront.usage else LLM_PRODUCT)
            req.user_id, req.key = principal.user_id, principal.key
            await handler(self, req)
        except ClientGone:
            return
        except UpstreamReply as exc:
            if not req.started:
                headers = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
                if "content-type" not in exc.headers:
                    headers.append(_JSON)
                await _send_bytes(send, exc.status_code, exc.body, headers)
        except Exception as exc:  # noqa: BLE001 - answered in the protocol's error shape
            # a 401 in each protocol's own words for a key it does not know
            out = render_error(exc, lambda status, message, _data: req.protocol.error_body(
                status, req.protocol.unauthorized if status == 401 else message),
                where=scope["path"], crash_message="internal error")
            if not req.started:
                raw = [_JSON, *((k.lower().encode(), v.encode())
                                for k, v in out.headers.items())]
                await _send_bytes(req.send, out.status, out.payload, raw)

    async def _body(self, req: Request) -> tuple[dict[str, Any], bytes]:
        raw = await read_body(req.scope, req.receive, self._max_body)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body: invalid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(body, dict):
            raise BadRequest("body: must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise BadRequest("model: Field required")
        for name in _TOKEN_LIMITS:
            value = body.get(name)
            if value is not None and (type(value) is not int or value < 1):
                raise BadRequest(f"{name}: Input should be a positive integer")
        if req.key is not None:
            req.key.check_model(body["model"])
        return body, raw

    # -- handlers -------------------------------------------------------------------------
    async def generate(self, req: Request) -> None:
        body, raw = await self._body(req)
        prep = Prepared(req.protocol, req.scope["path"], body, raw, req.scope["headers"],
                        stream=body.get("stream") is True,
                        query=req.scope.get("query_string", b""))
        if prep.stream and req.protocol is OPENAI:
            prep.client_usage = OPENAI.with_usage(body)
        relay = req.relay
        call, found = await relay.begin(req.user_id, prep,
                                        req.key.key_id if req.key is not None else None)
        if not prep.stream:
            # one upstream answer, sent whole: no watcher for a client that goes away
            # mid-answer (there is no middle to stop); the call is settled either way
            try:
                await self._pump(req, relay, call, found, prep)
            finally:
                await relay.finish(call)
            return
        # the pump's outcome is this handler's (raised below, or read once it is stopped);
        # the watcher's nobody else reads, so its failure is logged as it happens
        pump = asyncio.create_task(self._pump(req, relay, call, found, prep),
                                   name="gengate-llm-pump")
        watcher = spawn(_until_disconnect(req.receive), "gengate-llm-watch")
        try:
            done, _ = await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if pump not in done:
                pump.cancel()
                (stopped,) = await asyncio.gather(pump, return_exceptions=True)
                if isinstance(stopped, Exception):
                    log.warning("event=llm_stream_failed request=%s error=%s", call.id,
                                type(stopped).__name__, exc_info=stopped)
                call.status = "cancelled"
                log.info("event=llm_client_gone request=%s", call.id)
                return
            pump.result()
        finally:
            watcher.cancel()
            await relay.finish(call)

    async def _pump(self, req: Request, relay: Relay, call: LlmCall, found: Any,
                    prep: Prepared) -> None:
        response, first, rest = await relay.open(call, found, prep)
        reply_headers = passed_headers(response.raw_headers)
        reply_headers.append((b"x-gengate-request-id", call.id.encode()))
        if not prep.stream:
            try:
                prep.protocol.usage_from_body(orjson.loads(first), call.usage)
            except (orjson.JSONDecodeError, AttributeError):
                log.warning("event=llm_usage_unreadable request=%s", call.id)
            call.status = "ok"
            req.started = True
            await _send_bytes(req.send, response.status_code, first, [_JSON, *reply_headers])
            return
        assert rest is not None
        reply = StreamReply(call, prep, response, first, rest)
        try:
            await req.start(200, [*_SSE, *reply_headers])
            async for out in reply.chunks():
                await req.send({"type": "http.response.body", "body": out, "more_body": True})
            await req.send({"type": "http.response.body", "body": b""})
        finally:
            await reply.aclose()

    async def count_tokens(self, req: Request) -> None:
        body, raw = await self._body(req)
        prep = Prepared(req.protocol, req.scope["path"], body, raw, req.scope["headers"],
                        query=req.scope.get("query_string", b""))
        result = await req.relay.count_tokens(prep)
        req.started = True
        await _send_bytes(req.send, 200, result, [_JSON])

    async def models(self, req: Request) -> None:
        ids = await req.rt.relay.models(req.protocol.kind) if req.rt.relay is not None else []
        await req.answer({"object": "list", "data": [_model(m) for m in ids],
                          "has_more": False, "first_id": ids[0] if ids else None,
                          "last_id": ids[-1] if ids else None})

    async def model(self, req: Request) -> None:
        """One model (``models.retrieve`` in both SDKs); 404 for one no account serves."""
        wanted = unquote(req.scope["path"].removeprefix(_MODEL_PREFIX))
        ids = await req.rt.relay.models(req.protocol.kind) if req.rt.relay is not None else []
        if wanted not in ids:
            raise NotFound(f"model: {wanted}")
        await req.answer(_model(wanted))

    async def usage(self, req: Request) -> None:
        query = parse_query(req.scope.get("query_string", b""))
        page = _int_param(query, "page", 1, MAX_PAGE)
        limit = _int_param(query, "limit", 50, MAX_USAGE_LIMIT)
        relay = req.rt.relay
        rows = (await relay.usage(req.user_id, page, limit, peek=1) if relay is not None
                else await usage_history(req.rt.store, req.user_id, page, limit, peek=1))
        data = [{"id": r.id, "model": r.model, "account": r.account,
                 "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                 "cache_creation_input_tokens": r.cache_write_tokens,
                 "cache_read_input_tokens": r.cache_read_tokens, "cost": from_milli(r.cost),
                 "status": r.status, "started_at": r.started_at, "duration_ms": r.duration_ms,
                 "key_id": r.key_id}
                for r in rows[:limit]]
        await req.answer({"object": "list", "data": data, "page": page,
                          "has_more": len(rows) > limit})


def _model(name: str) -> dict[str, Any]:
    """One model in both protocols' shapes at once (Anthropic's ``type``, ``display_name``
    and ``created_at``; OpenAI's ``object``, ``created`` and ``owned_by``)."""
    return {"type": "model", "object": "model", "id": name, "display_name": name,
            "created_at": "2025-01-01T00:00:00Z", "created": 1735689600, "owned_by": "gengate"}


def _route(path: str) -> tuple[tuple[str, ...], Protocol | None, Handler] | None:
    found = _ROUTES.get(path)
    if found is None and path.startswith(_MODEL_PREFIX) and len(path) > len(_MODEL_PREFIX):
        return _GET, None, LlmFront.model
    return found


#: the most rows one /v1/usage page lists
MAX_USAGE_LIMIT = 500


def _int_param(query: dict[str, str], name: str, default: int, high: int) -> int:
    """A whole number from 1 to ``high``; anything else is refused, never clamped."""
    raw = query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= high):
        raise BadRequest(f"{name}: must be an integer from 1 to {high}")
    return int(raw)


def _has(scope: dict[str, Any], name: bytes) -> bool:
    return any(key == name for key, _ in scope["headers"])


_POST, _GET = ("POST",), ("GET",)
_MODEL_PREFIX = "/v1/models/"
#: body fields that must be whole numbers of tokens when present (``true`` is not one)
_TOKEN_LIMITS = ("max_tokens", "max_completion_tokens")
_ROUTES: dict[str, tuple[tuple[str, ...], Protocol | None, Handler]] = {
    "/v1/messages": (_POST, ANTHROPIC, LlmFront.generate),
    "/v1/messages/count_tokens": (_POST, ANTHROPIC, LlmFront.count_tokens),
    "/v1/chat/completions": (_POST, OPENAI, LlmFront.generate),
    "/v1/models": (_GET, None, LlmFront.models),
    "/v1/usage": (_GET, OPENAI, LlmFront.usage),
}
