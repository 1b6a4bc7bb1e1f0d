"""The job service: what every front calls to submit, act on, fetch and list jobs.

Submission order: check the request (prompt grammar, banned words, parent job, inputs),
price it, then admit it atomically (``max_queue``, balance, freeze, insert) through the
group-committing :class:`~gengate.admission.Admitter`.

Requests that carry images are checked against the user's queue and balance first (a cheap
read; the admission stays the authority), so a user who could not be admitted never makes the
server decode anything. Images are decoded off the event loop, a few at a time; long prompts
are checked off the event loop too, so one request never holds up the others.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from gengate import imaging, wire
from gengate import prompt as prompts
from gengate.admission import Admitter
from gengate.clock import Clock
from gengate.errors import BadRequest, InsufficientBalance, NotFound, QueueFull, Unauthorized
from gengate.jobs import (
    ENDPOINT_ONLY_ACTIONS,
    Job,
    JobStatus,
    Mode,
    ResultKind,
    normalize_action,
    resolve_timeout,
)
from gengate.keys import hash_key
from gengate.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_PROMPT_CHARS
from gengate.lookups import BatchedLookup
from gengate.netguard import NetGuard
from gengate.pool import PoolService
from gengate.quota import PriceTable
from gengate.ratelimit import Limits
from gengate.store import Admission, Store

__all__ = ["JobService", "Principal", "Submit"]

PRODUCT = "midjourney"
_KEY_CACHE_SECONDS = 10.0
#: finished jobs whose serialized fetch body is kept in memory
FINISHED_CACHE = 20_000
#: images decoded at once (one 4096 x 4096 image takes about 50 MB while it is re-encoded)
IMAGE_SLOTS = 1
#: seconds a finished job's body is served from memory: its result files may still expire
#: or move to another store (on any node), which changes the body
FINISHED_TTL = 30.0


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user, which key (a hash prefix), and its limits
    (``None``: the deployment's defaults)."""

    user_id: int
    key_id: str
    limits: Limits | None


@dataclass(frozen=True, slots=True)
class Submit:
    """What every submit carries besides its own fields."""

    user_id: int
    timeout: int | None = None
    hook_url: str | None = None
    get_u_images: bool = False
    idempotency_key: str | None = None
    hook_progress: bool = False
    #: a fingerprint of the request an idempotency key was first used with
    request_hash: str | None = None
    #: through /hold: run on the user's own accounts, at the hosting prices
    hosted: bool = False
    #: a fast job may take a relax slot (at relax's price) when no fast slot is free
    relax_fallback: bool = False


def _seed_from(job_id: str) -> int:
    return int(job_id.replace("-", "")[:8], 16)


class JobService:
    def __init__(self, store: Store, clock: Clock, prices: PriceTable,
                 rules: prompts.PromptRules, word_filter: prompts.WordFilter,
                 admitter: Admitter, guard: NetGuard, pool: PoolService,
                 hosting_prices: PriceTable):
        self.store = store
        self.clock = clock
        self.prices = prices
        self.hosting_prices = hosting_prices
        self.pool = pool
        self.rules = rules
        self.word_filter = word_filter
        self.admitter = admitter
        self.guard = guard
        self._keys: dict[str, tuple[Principal, float]] = {}
        # bounds the threads (and the memory) that decoding images takes
        self._image_slots = asyncio.Semaphore(IMAGE_SLOTS)
        self._finished: OrderedDict[str, tuple[int, bytes, float]] = OrderedDict()
        # SQLite answers a lookup inline in microseconds; over a network, lookups that
        # arrive together share one query
        self._read_job = (
            store.get_job if store.db.is_sqlite else BatchedLookup(store.get_jobs).get
        )

    # -- auth ---------------------------------------------------------------------------
    async def principal(self, raw_key: str | None) -> Principal:
        """Who an API key belongs to, and the request limits that apply to it; or 401."""
        if not raw_key:
            raise Unauthorized()
        digest = hash_key(raw_key)
        cached = self._keys.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        user = await self.store.user_by_key_hash(digest)
        if user is None or not user.active:
            self._keys.pop(digest, None)
            raise Unauthorized()
        if len(self._keys) > 100_000:
            self._keys.clear()
        limits = None
        if user.rate_per_second is not None or user.rate_per_minute is not None:
            limits = Limits(user.rate_per_second, user.rate_per_minute)
        principal = Principal(user.id, digest[:16], limits)
        self._keys[digest] = (principal, now + _KEY_CACHE_SECONDS)
        return principal

    def forget_key(self, key_hash: str | None = None) -> None:
        """Drop a cached key (or all of them) after a revocation or a user's deactivation."""
        if key_hash is None:
            self._keys.clear()
        else:
            self._keys.pop(key_hash, None)

    # -- submissions --------------------------------------------------------------------
    async def check_prompt(self, prompt: str) -> prompts.ParsedPrompt:
        """The checked prompt (grammar and banned words), or 400.

        Every check is linear in the prompt, and the longest prompt takes a few milliseconds,
        so it runs on the event loop (a thread would make the loop wait for the interpreter
        lock several times over). A permutation prompt is filtered once per expansion: other
        requests run between two expansions."""
        if not prompt or not prompt.strip():
            raise BadRequest("prompt: must not be empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise BadRequest(f"prompt: must be at most {MAX_PROMPT_CHARS} characters")
        parsed = prompts.parse_prompt(prompt, self.rules)
        if not parsed.permutations:
            self.word_filter.check(parsed.text)
            return parsed
        for variant in parsed.permutations:
            await asyncio.sleep(0)
            self.word_filter.check(variant.text)
        return parsed

    async def precheck(self, sub: Submit, action: str, mode: Mode, *,
                       parent: Job | None = None) -> None:
        """499 or 402 now if the job could not be admitted as things stand, before any
        expensive work on its inputs. A cheap read; :meth:`_admit` stays the authority."""
        hosted = parent.hosted if parent is not None else sub.hosted
        prices = self.hosting_prices if hosted else self.prices
        await self._precheck(sub.user_id, prices.price_milli(PRODUCT, action, mode.value))

    async def precheck_any(self, user_id: int, action: str) -> None:
        """499 or 402 if the user could not be admitted for ``action`` in any mode at any
        price: asked before a request's body (its images) is even read."""
        prices = []
        for table in (self.prices, self.hosting_prices):
            for mode in Mode:
                try:
                    prices.append(table.price_milli(PRODUCT, action, mode.value))
                except BadRequest:
                    continue  # not priced in that mode: admission says so
        await self._precheck(user_id, min(prices, default=0))

    async def _precheck(self, user_id: int, price: int) -> None:
        user = await self.store.get_user(user_id)
        if user.in_flight >= user.max_queue:
            raise QueueFull()
        if user.balance < price:
            raise InsufficientBalance()

    async def _decode(self, images: list[str], field: str) -> list[bytes]:
        async with self._image_slots:
            return await asyncio.to_thread(_decode_all, images, field)

    async def imagine(self, sub: Submit, prompt: str, mode: Mode) -> Job:
        parsed = await self.check_prompt(prompt)
        if parsed.permutations:
            raise BadRequest(
                f"prompt: permutation prompts expand to {len(parsed.permutations)} jobs; "
                "submit each prompt on its own"
            )
        mode = Mode(parsed.mode) if parsed.mode else mode
        job_id = str(uuid.uuid4())
        seed = parsed.seed if parsed.seed is not None else _seed_from(job_id)
        params = {"version": parsed.version, "aspect": list(parsed.aspect), "seed": seed}
        return await self._admit(sub, job_id, "imagine", mode, parsed.canonical, params)

    async def action(self, sub: Submit, parent_id: str, action: str) -> Job:
        spec = normalize_action(action)
        if spec.name in ENDPOINT_ONLY_ACTIONS:
            raise BadRequest(f"action: use /midjourney/v1/{spec.name} for {spec.name}")
        parent = await self._parent(sub.user_id, parent_id)
        if spec.name not in (parent.result.get("components") or []):
            raise BadRequest(
                f"action: `{spec.name}` is not available on job {parent.id} "
                f"(a {parent.result.get('kind')} result); available: "
                f"{', '.join(parent.result.get('components') or []) or 'none'}"
            )
        job_id = str(uuid.uuid4())
        params = self._inherit(parent, spec.name, job_id)
        return await self._admit(sub, job_id, spec.name, parent.mode, parent.prompt, params,
                                 parent=parent)

    async def seed(self, sub: Submit, parent_id: str) -> Job:
        parent = await self._parent(sub.user_id, parent_id)
        if parent.result.get("kind") not in (ResultKind.GRID, ResultKind.IMAGE,
                                             ResultKind.UPSCALED):
            raise BadRequest("jobId: only jobs with an image have a seed")
        job_id = str(uuid.uuid4())
        params = self._inherit(parent, "seed", job_id)
        params["parent_seed"] = parent.params.get("seed")
        return await self._admit(sub, job_id, "seed", parent.mode, parent.prompt, params,
                                 parent=parent)

    async def inpaint(self, sub: Submit, parent_id: str, mask: str, prompt: str | None) -> Job:
        parent = await self._parent(sub.user_id, parent_id)
        if "inpaint" not in (parent.result.get("components") or []):
            raise BadRequest("jobId: inpaint needs an upscaled (single image) job")
        text = parent.prompt
        if prompt and prompt.strip():
            text = (await self.check_prompt(prompt)).canonical
        await self.precheck(sub, "inpaint", parent.mode, parent=parent)
        size = (parent.result.get("width"), parent.result.get("height"))
        async with self._image_slots:
            mask_png = await asyncio.to_thread(_decode_mask, mask, size)
        job_id = str(uuid.uuid4())
        params = self._inherit(parent, "inpaint", job_id)
        return await self._admit(sub, job_id, "inpaint", parent.mode, text, params,
                                 parent=parent, inputs=[mask_png])

    async def blend(self, sub: Submit, images: list[str], aspect: tuple[int, int],
                    mode: Mode) -> Job:
        if not 2 <= len(images) <= 5:
            raise BadRequest("imgBase64Array: give 2 to 5 images")
        await self.precheck(sub, "blend", mode)
        pngs = await self._decode(images, "imgBase64Array")
        job_id = str(uuid.uuid4())
        params = {"version": self.rules.default_version, "aspect": list(aspect),
                  "seed": _seed_from(job_id)}
        return await self._admit(sub, job_id, "blend", mode, "", params, inputs=pngs)

    async def describe(self, sub: Submit, base64: str | None, url: str | None,
                       mode: Mode) -> Job:
        job_id = str(uuid.uuid4())
        params: dict[str, Any] = {"version": self.rules.default_version, "aspect": [1, 1],
                                  "seed": _seed_from(job_id)}
        inputs: list[bytes] = []
        if base64:
            await self.precheck(sub, "describe", mode)
            inputs = await self._decode([base64], "base64")
        elif url:
            await self.guard.check(url, "url")
            params["url"] = url
        else:
            raise BadRequest("base64: give base64 or url")
        return await self._admit(sub, job_id, "describe", mode, "", params, inputs=inputs)

    async def _parent(self, user_id: int, parent_id: str) -> Job:
        """The caller's SUCCESS job ``parent_id``. A follow-up runs where its parent ran
        (the same account, so the same pool and prices), whichever path it came by."""
        parent = await self.store.get_job(parent_id)
        if parent is None or parent.user_id != user_id:
            raise NotFound(f"jobId: job {parent_id} not found")
        if parent.status is not JobStatus.SUCCESS:
            raise BadRequest(f"jobId: job {parent_id} is {parent.status.value}, not SUCCESS")
        return parent

    @staticmethod
    def _inherit(parent: Job, action: str, job_id: str) -> dict[str, Any]:
        seed = int(parent.params.get("seed", 0))
        if action.startswith("variation"):
            seed += int(action[-1])
        elif action in ("reroll", "high_variation", "low_variation") or "zoom" in action or (
            action.startswith("pan_") or action in ("make_square", "inpaint")
        ):
            seed = _seed_from(job_id)
        aspect = parent.result.get("aspect") or parent.params.get("aspect", [1, 1])
        return {"version": parent.params.get("version", "7"), "aspect": aspect, "seed": seed}

    async def _admit(self, sub: Submit, job_id: str, action: str, mode: Mode, prompt: str,
                     params: dict[str, Any], *, parent: Job | None = None,
                     inputs: list[bytes] | None = None) -> Job:
        timeout = resolve_timeout(mode, sub.timeout)
        hosted = parent.hosted if parent is not None else sub.hosted
        prices = self.hosting_prices if hosted else self.prices
        if parent is None:
            await self.pool.require_serving(sub.user_id if hosted else None, mode,
                                            sub.relax_fallback)
        if sub.relax_fallback and mode is Mode.FAST and parent is None:
            params["relax_fallback"] = True
            params["fallback_quota"] = prices.price_milli(PRODUCT, action, Mode.RELAX.value)
        hook_url = await self._hook_url(sub.hook_url)
        if hook_url and sub.hook_progress:
            params["hook_progress"] = True
        if sub.request_hash:
            params["request"] = sub.request_hash
        now = self.clock.now()
        job = Job(
            id=job_id, user_id=sub.user_id, product=PRODUCT, action=action, mode=mode,
            status=JobStatus.PENDING_QUEUE, progress=0, prompt=prompt,
            quota=prices.price_milli(PRODUCT, action, mode.value), timeout=timeout,
            created_at=now, deadline=now + timeout, hook_url=hook_url,
            get_u_images=sub.get_u_images, parent_id=parent.id if parent else None,
            params=params, hosted=hosted,
        )
        return await self.admitter.admit(Admission(job, sub.idempotency_key, inputs or []))

    async def _hook_url(self, url: str | None) -> str | None:
        """A webhook URL that is safe to call, or 400 naming what is wrong with it."""
        if not url:
            return None
        await self.guard.check(url)
        return url

    # -- reads --------------------------------------------------------------------------
    async def fetch(self, user_id: int, job_id: str) -> Job:
        job = await self._read_job(job_id) if job_id else None
        if job is None or job.user_id != user_id:
            raise NotFound(f"jobId: job {job_id} not found")
        return job

    async def fetch_body(self, user_id: int, job_id: str) -> bytes:
        """The fetch body, serialized. A finished job changes only when its result files
        expire or move, so its body is kept (in a bounded LRU, for ``FINISHED_TTL``
        seconds) and later fetches skip the database; a live job is read every time."""
        cached = self._finished.get(job_id)
        if cached is not None and cached[0] == user_id and time.monotonic() < cached[2]:
            self._finished.move_to_end(job_id)
            return cached[1]
        job = await self.fetch(user_id, job_id)
        body = orjson.dumps(wire.fetch_body(job))
        if job.status.terminal:
            self._finished[job_id] = (user_id, body, time.monotonic() + FINISHED_TTL)
            self._finished.move_to_end(job_id)
            if len(self._finished) > FINISHED_CACHE:
                self._finished.popitem(last=False)
        return body

    def forget(self, job_id: str) -> None:
        """Drop a finished job's kept body (its result expired or moved on this node)."""
        self._finished.pop(job_id, None)

    async def list_jobs(self, user_id: int, *, page: int, limit: int, status: str | None,
                        ascending: bool) -> list[Job]:
        return await self.store.list_jobs(user_id, status, page, limit, ascending)

    async def illegal_count(self, user_id: int) -> int:
        return await self.store.illegal_count(user_id, self.clock.now())


def _decode_all(values: list[str], field: str) -> list[bytes]:
    out = []
    for i, value in enumerate(values):
        label = f"{field}[{i}]" if len(values) > 1 or field.endswith("Array") else field
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{label}: must be a base64 image")
        image = imaging.decode_base64_image(value, label, max_bytes=MAX_IMAGE_BYTES,
                                            max_pixels=MAX_IMAGE_PIXELS)
        out.append(imaging.encode_png(image))
    return out


def _decode_mask(value: str, size: tuple[Any, Any]) -> bytes:
    mask = imaging.decode_base64_image(value, "mask", mode="L", max_bytes=MAX_IMAGE_BYTES,
                                       max_pixels=MAX_IMAGE_PIXELS)
    if mask.size != size:
        raise BadRequest(
            f"mask: must be {size[0]}x{size[1]} like the job's image, got "
            f"{mask.size[0]}x{mask.size[1]}"
        )
    if mask.point(lambda v: 255 if v >= 128 else 0).getbbox() is None:
        raise BadRequest("mask: has no white area to redraw")
    return imaging.encode_png(mask)
