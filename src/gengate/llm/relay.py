"""The LLM relay: picks upstream accounts, fails over, cools accounts down, and bills.

One call: hold the worst-case price (402 if the balance is short), try the accounts that
serve the model in order, retrying connection errors and 5xx on each and failing over to
the next, all before the first byte reaches the client; then relay the answer (a stream
event by event, never buffered whole) and settle the real cost from the upstream's usage,
refunding the rest, with the usage row, in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from gengate.background import supervise
from gengate.batching import GroupCommit
from gengate.clock import Clock
from gengate.errors import GengateError, NotFound
from gengate.llm.accounts import Candidate, LlmAccount, LlmAccounts, retry_after_seconds
from gengate.llm.anthropic import ANTHROPIC
from gengate.llm.openai import OPENAI
from gengate.llm.prices import price_table
from gengate.llm.pricing import LlmPriceTable, ModelPrice, Usage
from gengate.llm.protocol import (
    EventSplitter,
    Protocol,
    UpstreamClient,
    UpstreamFailed,
    UpstreamReply,
    UpstreamResponse,
    UpstreamTransportError,
    event_data,
    passed_headers,
)
from gengate.store import Store
from gengate.store.llmrows import Hold, UsageRow

__all__ = ["LlmCall", "Prepared", "Relay", "StreamReply"]

log = logging.getLogger("gengate.llm.relay")

PROTOCOLS: dict[str, Protocol] = {ANTHROPIC.kind: ANTHROPIC, OPENAI.kind: OPENAI}

PURGE_EVERY = 3600.0
#: seconds an upstream's model list is kept
MODELS_TTL = 300.0
Chunks = AsyncIterator[bytes]
#: a hold (user id, request id, amount, key id) or a settlement (usage row, amount held)
_Money = Hold | tuple[UsageRow, int]
_MAX_ERROR_BODY = 64 * 1024


@dataclass(slots=True)
class Prepared:
    """A parsed client request, ready to relay."""

    protocol: Protocol
    path: str
    body: dict[str, Any]
    raw: bytes
    headers: list[tuple[bytes, bytes]]
    stream: bool = False
    client_usage: bool = True  # OpenAI streams: did the client ask for the usage chunk
    query: bytes = b""  # the client's query string, passed upstream as it came

    def url(self, account: LlmAccount) -> str:
        url = self.protocol.url(account, self.path)
        return f"{url}?{self.query.decode('latin-1')}" if self.query else url

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "")

    def payload(self, model: str) -> bytes:
        """The body for an upstream whose model name is ``model``; unknown fields kept."""
        if model == self.model and self.client_usage:
            return self.raw
        return orjson.dumps({**self.body, "model": model})


@dataclass(slots=True)
class LlmCall:
    """One billed call in flight."""

    id: str
    user_id: int
    model: str
    held: int
    price: ModelPrice
    started_at: float
    t0: float = field(default_factory=time.perf_counter)
    account: str = ""
    usage: Usage = field(default_factory=Usage)
    status: str = "failed"
    settled: bool = False
    key_id: int | None = None


class Relay:
    def __init__(self, store: Store, clock: Clock, accounts: LlmAccounts, prices: LlmPriceTable,
                 http: UpstreamClient, *, retries: int = 1, cooldown: float = 10.0,
                 default_max_tokens: int = 8192, retention_days: float = 90.0):
        self.store = store
        self.clock = clock
        self.accounts = accounts
        self.prices = prices
        self.http = http
        self.retries = retries
        self.cooldown = cooldown
        self.default_max_tokens = default_max_tokens
        self.retention_days = retention_days
        self._purger: asyncio.Task[None] | None = None
        # the holds before calls and the settlements after them are group-committed
        # together: the calls that start and end in one turn of the loop share one
        # transaction
        self._money: GroupCommit[_Money, int | None] = GroupCommit(self._money_many)
        #: account name -> (until, model ids its upstream lists)
        self._listed: dict[str, tuple[float, list[str]]] = {}

    async def usage(self, user_id: int, page: int, limit: int,
                    peek: int = 0) -> list[UsageRow]:
        """A user's LLM calls, newest first (``peek`` more rows, to tell if there are)."""
        return await usage_history(self.store, user_id, page, limit, peek)

    async def _money_many(self, items: list[_Money]) -> list[int | None | GengateError]:
        holds = [x for x in items if isinstance(x[0], int)]
        settles = [x for x in items if isinstance(x[0], UsageRow)]
        held, settled = await self.store.llm_money_many(
            holds, settles, self.clock.now())
        held_it, settled_it = iter(held), iter(settled)
        return [next(held_it) if isinstance(x[0], int) else next(settled_it) for x in items]

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._purger is None:
            self._purger = supervise(self._purge_loop, "gengate-llm-purge")

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            await asyncio.gather(self._purger, return_exceptions=True)
            self._purger = None
        await self.http.aclose()

    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.purge_usage()
            except Exception:
                log.exception("event=llm_usage_purge_failed")
            await asyncio.sleep(PURGE_EVERY)

    async def purge_usage(self) -> int:
        """Delete usage rows older than the retention, in batches; returns how many."""
        before = self.clock.now() - self.retention_days * 86400
        total = 0
        while True:
            gone = await self.store.llm_purge_usage(before)
            total += gone
            if gone < 5000:
                return total

    # -- calls ----------------------------------------------------------------------------
    def candidates(self, prep: Prepared) -> list[Candidate]:
        found = self.accounts.candidates(prep.protocol.kind, prep.model, time.monotonic())
        if not found:
            raise NotFound(f"model: {prep.model or '(none)'} is not available")
        return found

    async def begin(self, user_id: int, prep: Prepared,
                    key_id: int | None = None) -> tuple[LlmCall, list[Candidate]]:
        """Hold the worst-case price of the call; 402 if the balance (or the key's spend
        cap) is short."""
        found = self.candidates(prep)
        price = self.prices.price(found[0].model)
        limit = prep.body.get("max_tokens") or prep.body.get("max_completion_tokens")
        max_tokens = limit if isinstance(limit, int) and limit > 0 else self.default_max_tokens
        # the hold is an estimate only: the settlement charges what the upstream reports
        held = price.hold_milli(len(prep.raw) // 2 + 16, max_tokens)
        call = LlmCall(f"llm_{os.urandom(16).hex()}", user_id, prep.model, held, price,
                       self.clock.now(), key_id=key_id)
        await self._money.submit((user_id, call.id, held, key_id))
        return call, found

    async def open(self, call: LlmCall, found: list[Candidate],
                   prep: Prepared) -> tuple[UpstreamResponse, bytes, Chunks | None]:
        """The first upstream that answers: its response, first bytes (the whole body when
        not streaming) and the rest of its stream. Refunds the hold and raises if none does."""
        try:
            cand, response, first, rest = await self.attempt(found, prep)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                call.status = "cancelled"  # the client left before the upstream answered
            await self.finish(call)
            raise
        call.account = cand.account.name
        call.price = self.prices.price(cand.model)
        return response, first, rest

    async def attempt(self, found: list[Candidate],
                      prep: Prepared) -> tuple[Candidate, UpstreamResponse, bytes, Chunks | None]:
        last: GengateError = UpstreamFailed("no upstream account answered")
        for cand in found:
            for _ in range(self.retries + 1):
                try:
                    response, first, rest = await self._try(cand, prep)
                except UpstreamFailed as exc:
                    last = exc
                    if not exc.retryable:
                        break
                    continue
                except UpstreamReply as exc:
                    if not exc.failover:
                        raise
                    last = exc  # relayed as it came if no other account answers
                    if not exc.retry:
                        break
                    continue
                self.accounts.recover(cand.account.name)
                return cand, response, first, rest
            else:
                self.accounts.cool_down(cand.account.name, time.monotonic() + self.cooldown)
        raise last

    async def _try(self, cand: Candidate,
                   prep: Prepared) -> tuple[UpstreamResponse, bytes, Chunks | None]:
        proto, account = prep.protocol, cand.account
        url = prep.url(account)
        headers = proto.headers(account, prep.headers)
        try:
            response = await self.http.post(url, headers, prep.payload(cand.model))
        except UpstreamTransportError as exc:
            log.warning("event=llm_upstream_error account=%s error=%s", account.name,
                        type(exc).__name__)
            raise UpstreamFailed("upstream connection failed") from None
        try:
            if response.status_code >= 300:
                await self._refused(cand, response)
            if not prep.stream:
                return response, await response.aread(), None
            rest = response.aiter_bytes()
            async for chunk in rest:
                if chunk:
                    return response, chunk, rest
            return response, b"", rest
        except UpstreamTransportError as exc:
            await response.aclose()
            log.warning("event=llm_upstream_dropped account=%s error=%s", account.name,
                        type(exc).__name__)
            raise UpstreamFailed("upstream connection dropped") from None
        except BaseException:
            await response.aclose()
            raise

    async def _refused(self, cand: Candidate, response: UpstreamResponse) -> None:
        """Turn an upstream error status into the right error (and cooldown). The
        upstream's own answer (status, body, request id, rate-limit headers) is what the
        client sees, unless another account answers instead; a Retry-After is relayed only
        when the upstream sent one."""
        status = response.status_code
        name = cand.account.name
        log.warning("event=llm_upstream_status account=%s status=%s", name, status)
        if status in (401, 403):
            self.accounts.cool_down(name, time.monotonic() + self.cooldown * 6)
            raise UpstreamFailed("upstream account refused", 502, retryable=False)
        if status < 400:
            raise UpstreamFailed(f"upstream error {status}", 502)
        if status in (429, 529):
            wait = retry_after_seconds(response.headers.get("retry-after"), self.cooldown)
            self.accounts.cool_down(name, time.monotonic() + wait)
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _MAX_ERROR_BODY:
                break
        keep = {k.decode("latin-1"): v.decode("latin-1")
                for k, v in passed_headers(response.raw_headers)}
        kind = response.headers.get("content-type")
        if kind is not None:
            keep["content-type"] = kind
        raise UpstreamReply(status, body[:_MAX_ERROR_BODY], keep,
                            failover=status in (429, 529) or status >= 500,
                            retry=status >= 500 and status != 529)

    async def finish(self, call: LlmCall) -> None:
        """Settle the call: charge the usage seen, refund the rest, record the row."""
        if call.settled:
            return
        call.settled = True
        usage = call.usage
        row = UsageRow(call.id, call.user_id, call.model[:128], call.account, usage.input,
                       usage.output, usage.cache_write, usage.cache_read,
                       call.price.cost_milli(usage), call.status, call.started_at,
                       int((time.perf_counter() - call.t0) * 1000), call.key_id)
        try:
            await self._money.submit((row, call.held))
        except Exception:
            log.exception("event=llm_settle_failed request=%s", call.id)

    async def count_tokens(self, prep: Prepared) -> bytes:
        """Ask an upstream to count; estimate locally if none implements it."""
        try:
            _, response, body, _ = await self.attempt(self.candidates(prep), prep)
        except UpstreamReply as exc:
            if exc.status_code not in (404, 405):
                raise
            return orjson.dumps({"input_tokens": max(1, len(prep.raw) // 4)})
        await response.aclose()
        return body

    async def models(self, kind: str | None = None) -> list[str]:
        """Model names clients can ask for: aliases and exact names from the accounts, and
        for accounts that serve patterns (``claude-*``, ``*``), what their upstream's own
        ``/v1/models`` lists and the patterns match (asked at most every 5 minutes)."""
        names = dict.fromkeys(self.accounts.model_ids(kind))
        for account in self.accounts.accounts:
            if (kind is None or account.kind == kind) and any(
                    ch in pattern for pattern in account.models for ch in "*?["):
                for model in await self._upstream_models(account):
                    if account.upstream_model(model) is not None:
                        names.setdefault(model)
        return list(names)

    async def _upstream_models(self, account: LlmAccount) -> list[str]:
        now = time.monotonic()
        cached = self._listed.get(account.name)
        if cached is not None and cached[0] > now:
            return cached[1]
        proto = PROTOCOLS[account.kind]
        try:
            body = await self.http.get_json(proto.url(account, "/v1/models"),
                                            proto.headers(account, []))
            data = body.get("data") if isinstance(body, dict) else None
            ids = [str(m["id"]) for m in data or [] if isinstance(m, dict) and m.get("id")]
        except UpstreamTransportError as exc:
            log.warning("event=llm_models_unlisted account=%s error=%s", account.name, exc)
            ids = cached[1] if cached is not None else []
        self._listed[account.name] = (now + MODELS_TTL, ids)
        return ids


class StreamReply:
    """Relays an upstream SSE stream event by event, reading usage on the way.

    At most one partial event is held; a dropped upstream becomes the protocol's error
    event and the stream ends there.
    """

    def __init__(self, call: LlmCall, prep: Prepared, response: UpstreamResponse, first: bytes,
                 rest: Chunks):
        self.call = call
        self.prep = prep
        self.response = response
        self.first = first
        self.rest = rest
        self._split = EventSplitter()

    async def chunks(self) -> AsyncIterator[bytes]:
        proto = self.prep.protocol
        self.call.status = "cancelled"
        try:
            out = self._events(self.first)
            if out:
                yield out
            async for chunk in self.rest:
                out = self._events(chunk)
                if out:
                    yield out
        except UpstreamTransportError as exc:
            log.warning("event=llm_stream_dropped request=%s account=%s error=%s",
                        self.call.id, self.call.account, type(exc).__name__)
            self.call.status = "dropped"
            yield proto.stream_error("upstream connection dropped mid-stream")
            return
        if self._split.pending.strip():
            yield self._split.pending
        self.call.status = "ok"

    def _events(self, chunk: bytes) -> bytes:
        kept = []
        for event in self._split.feed(chunk):
            if b'"usage"' in event and not self._usage(event):
                continue
            kept.append(event)
        return b"".join(kept)

    def _usage(self, event: bytes) -> bool:
        """Read the usage of one event; False if the event is ours only (to drop)."""
        data = event_data(event)
        if not data:
            return True
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if isinstance(obj, dict):
            self.prep.protocol.usage_from_event(obj, self.call.usage)
            if not self.prep.client_usage and obj.get("choices") == []:
                return False
        return True

    async def aclose(self) -> None:
        await self.response.aclose()


def build_relay(settings: Any, store: Store, clock: Clock) -> Relay | None:
    """The relay the settings describe, started; None when no LLM account is configured."""
    if not settings.llm_accounts:
        return None
    accounts = LlmAccounts(LlmAccount.parse(raw) for raw in settings.llm_accounts)
    http = UpstreamClient(settings.llm_connect_timeout, settings.llm_read_timeout)
    prices = price_table(settings.llm_prices_file, settings.llm_prices)
    relay = Relay(store, clock, accounts, prices, http,
                  retries=settings.llm_retries, cooldown=settings.llm_cooldown_seconds,
                  default_max_tokens=settings.llm_default_max_tokens,
                  retention_days=settings.llm_usage_retention_days)
    relay.start()
    return relay


async def usage_totals(store: Store, user_id: int, since: float) -> list[dict[str, Any]]:
    """A user's LLM calls since ``since``, summed per model (calls, failed, tokens, cost in
    milli-quota)."""
    return await store.llm_usage_totals(user_id, since)


async def usage_history(store: Store, user_id: int, page: int, limit: int,
                        peek: int = 0) -> list[UsageRow]:
    """A user's LLM calls, newest first: readable with no upstream account configured
    (the history outlives the accounts that made it)."""
    return await store.llm_usage(user_id, page, limit, peek=peek)
