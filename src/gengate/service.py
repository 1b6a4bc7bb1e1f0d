"""The job service: what every front calls to submit, act on, fetch and list jobs.

Submission order: check the request (prompt grammar, banned words, parent job, inputs),
price it, then admit it atomically (``max_queue``, balance, freeze, insert) through the
group-committing :class:`~gengate.admission.Admitter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import orjson

from gengate.admission import Admitter
from gengate.clock import Clock
from gengate.errors import BadRequest, GatewayTimeout, NotFound, Unauthorized
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
from gengate.lookups import BatchedLookup
from gengate.netguard import NetGuard
from gengate.pool import PoolService
from gengate.products.base import EngineOptions, JobRequest, Options, Product, Submit
from gengate.products.midjourney import imaging
from gengate.products.midjourney import prompt as prompts
from gengate.products.registry import Registry, builtin
from gengate.quota import PriceTable
from gengate.ratelimit import Limits
from gengate.store import Admission, Store

__all__ = ["JobService", "Principal", "Submit"]

PRODUCT = "midjourney"
_KEY_CACHE_SECONDS = 10.0
#: finished jobs whose serialized fetch body is kept in memory
FINISHED_CACHE = 20_000


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user, which key (a hash prefix), and its limits
    (``None``: the deployment's defaults)."""

    user_id: int
    key_id: str
    limits: Limits | None


def _seed_from(job_id: str) -> int:
    return int(job_id.replace("-", "")[:8], 16)


class JobService:
    """The one door to jobs for every front: submit (any product), fetch, list, wait,
    cancel."""

    def __init__(self, store: Store, clock: Clock, prices: PriceTable,
                 rules: prompts.PromptRules, word_filter: prompts.WordFilter,
                 admitter: Admitter, guard: NetGuard, pool: PoolService,
                 hosting_prices: PriceTable, products: Registry | None = None):
        self.products = products if products is not None else builtin()
        self._ended = asyncio.Event()
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
        self._finished: OrderedDict[str, tuple[int, str, bytes]] = OrderedDict()
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
    def check_prompt(self, prompt: str) -> prompts.ParsedPrompt:
        if not prompt or not prompt.strip():
            raise BadRequest("prompt: must not be empty")
        return prompts.check_prompt(prompt, self.rules, self.word_filter)

    async def imagine(self, sub: Submit, prompt: str, mode: Mode) -> Job:
        parsed = self.check_prompt(prompt)
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
        size = (parent.result.get("width"), parent.result.get("height"))
        mask_png = await asyncio.to_thread(_decode_mask, mask, size)
        text = parent.prompt
        if prompt and prompt.strip():
            text = self.check_prompt(prompt).canonical
        job_id = str(uuid.uuid4())
        params = self._inherit(parent, "inpaint", job_id)
        return await self._admit(sub, job_id, "inpaint", parent.mode, text, params,
                                 parent=parent, inputs=[mask_png])

    async def blend(self, sub: Submit, images: list[str], aspect: tuple[int, int],
                    mode: Mode) -> Job:
        if not 2 <= len(images) <= 5:
            raise BadRequest("imgBase64Array: give 2 to 5 images")
        pngs = await asyncio.to_thread(_decode_all, images, "imgBase64Array")
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
            inputs = await asyncio.to_thread(_decode_all, [base64], "base64")
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

    # -- any product --------------------------------------------------------------------
    async def submit(self, product: Product[Any], sub: Submit, request: JobRequest) -> Job:
        """Price the job (``product:action:variant``), check its hookUrl and that some
        account could run it, and admit it atomically (max_queue, balance, freeze, insert)."""
        parent = request.parent
        lane = request.lane
        timeout = product.timeout(lane, sub.timeout)
        hosted = parent.hosted if parent is not None else sub.hosted
        prices = self.hosting_prices if hosted else self.prices
        if parent is None:
            await self.pool.require_serving(sub.user_id if hosted else None, lane,
                                            sub.relax_fallback, product.name)
        engine = EngineOptions()
        if sub.relax_fallback and lane is Mode.FAST and parent is None:
            relax = request.variant if request.variant != lane.value else Mode.RELAX.value
            engine = replace(engine, relax_fallback=True, fallback_quota=prices.price_milli(
                product.name, request.action, relax))
        hook_url = await self._hook_url(sub.hook_url)
        if hook_url and sub.hook_progress:
            engine = replace(engine, hook_progress=True)
        if sub.request_hash:
            engine = replace(engine, request=sub.request_hash)
        params = {**request.options.to_json(), **_set_fields(engine)}
        now = self.clock.now()
        job = Job(
            id=request.job_id or str(uuid.uuid4()), user_id=sub.user_id,
            product=product.name, action=request.action, mode=lane,
            status=JobStatus.PENDING_QUEUE, progress=0, prompt=request.prompt,
            quota=prices.price_milli(product.name, request.action, request.variant),
            timeout=timeout, created_at=now, deadline=now + timeout, hook_url=hook_url,
            get_u_images=sub.get_u_images, parent_id=parent.id if parent else None,
            params=params, hosted=hosted,
        )
        return await self.admitter.admit(
            Admission(job, sub.idempotency_key, list(request.inputs)))

    async def parent(self, user_id: int, job_id: str) -> Job:
        """The caller's SUCCESS job ``job_id``. A follow-up runs where its parent ran
        (the same account, so the same pool and prices), whichever path it came by."""
        return await self._parent(user_id, job_id)

    async def check_url(self, url: str, field_name: str) -> None:
        """400 naming the field unless gengate may fetch ``url``."""
        await self.guard.check(url, field_name)

    def job_ended(self) -> None:
        """A job may have ended on this node: wake the synchronous waiters."""
        self._ended.set()
        self._ended = asyncio.Event()

    async def wait(self, user_id: int, job_id: str, timeout: float) -> Job:
        """The job once it ended (synchronous routes). Woken by this node's worker; a job
        finished by another node is seen at the next re-read (every second). Past
        ``timeout``: 504 with the jobId, the job going on."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while True:
            ended = self._ended
            job = await self.fetch(user_id, job_id)
            if job.status.terminal:
                return job
            left = until - loop.time()
            if left <= 0:
                raise GatewayTimeout(
                    f"Timeout: job {job_id} is still running; fetch it later", data={
                        "jobId": job_id, "job_id": job_id})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), min(left, 1.0))

    # -- reads --------------------------------------------------------------------------
    async def fetch(self, user_id: int, job_id: str, product: str | None = None) -> Job:
        job = await self._read_job(job_id) if job_id else None
        if job is None or job.user_id != user_id or (
                product is not None and job.product != product):
            raise NotFound(f"jobId: job {job_id} not found")
        return job

    async def fetch_body(self, user_id: int, job_id: str, product: str | None = None) -> bytes:
        """The fetch body in the job's product's shape, serialized. A finished job never
        changes again, so its body is kept (in a bounded LRU) and later fetches skip the
        database; a live job is read every time."""
        cached = self._finished.get(job_id)
        if cached is not None and cached[0] == user_id and (
                product is None or cached[1] == product):
            self._finished.move_to_end(job_id)
            return cached[2]
        job = await self.fetch(user_id, job_id, product)
        body = orjson.dumps(self.products.fetch_body(job))
        if job.status.terminal:
            self._finished[job_id] = (user_id, job.product, body)
            if len(self._finished) > FINISHED_CACHE:
                self._finished.popitem(last=False)
        return body

    async def list_jobs(self, user_id: int, *, page: int, limit: int, status: str | None,
                        ascending: bool) -> list[Job]:
        return await self.store.list_jobs(user_id, status, page, limit, ascending)

    async def illegal_count(self, user_id: int) -> int:
        return await self.store.illegal_count(user_id, self.clock.now())


def _set_fields(options: Options) -> dict[str, Any]:
    """The options' fields that differ from their defaults (rows stay small and keep
    the shape they had before the options were typed)."""
    default = type(options)().to_json()
    return {k: v for k, v in options.to_json().items() if v != default[k]}


def _decode_all(values: list[str], field: str) -> list[bytes]:
    out = []
    for i, value in enumerate(values):
        label = f"{field}[{i}]" if len(values) > 1 or field.endswith("Array") else field
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{label}: must be a base64 image")
        image = imaging.decode_base64_image(value, label)
        out.append(imaging.encode_png(image))
    return out


def _decode_mask(value: str, size: tuple[Any, Any]) -> bytes:
    mask = imaging.decode_base64_image(value, "mask", mode="L")
    if mask.size != size:
        raise BadRequest(
            f"mask: must be {size[0]}x{size[1]} like the job's image, got "
            f"{mask.size[0]}x{mask.size[1]}"
        )
    if mask.point(lambda v: 255 if v >= 128 else 0).getbbox() is None:
        raise BadRequest("mask: has no white area to redraw")
    return imaging.encode_png(mask)
