"""gengate's Python client: every product's routes, asynchronous and synchronous.

The client knows the products through the same contracts the server is built from
(:mod:`gengate.products`): a product's actions are its routes, their fields its request
models, so the client cannot ask for a route or a field the server does not have.

::

    from gengate.client import Client

    with Client("http://127.0.0.1:8000", "gg-...") as gg:
        job = gg.wait(gg.imagine("a red fox --ar 16:9"), timeout=600)
        print(job.status, job.files())

Errors are the server's own (:mod:`gengate.errors`): a 402 raises
:class:`~gengate.errors.InsufficientBalance`, a 499 :class:`~gengate.errors.QueueFull`, and
so on; a server that cannot be reached raises :class:`Unreachable`. Reads and submits that
carry an ``Idempotency-Key`` (every submit made here does) are retried after a broken
connection or a 502/503, as the contract makes those safe to repeat.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gengate import errors
from gengate.clientmodel import (
    Action,
    Form,
    Job,
    ProgressCallback,
    actions,
    file_field,
    form_of,
    job_id_of,
    product_of,
)
from gengate.errors import GengateError
from gengate.products.registry import Registry, builtin

__all__ = [
    "Action",
    "ApiError",
    "AsyncClient",
    "Client",
    "GengateClient",
    "Job",
    "ProgressCallback",
    "Unreachable",
    "WaitTimeout",
    "actions",
    "error_for",
    "job_id_of",
    "verify_webhook",
]

#: an error envelope, as the server's contract types it
ApiError = GengateError

_ERRORS: dict[int, type[GengateError]] = {
    400: errors.BadRequest, 401: errors.Unauthorized, 402: errors.InsufficientBalance,
    403: errors.Forbidden, 404: errors.NotFound, 405: errors.MethodNotAllowed,
    408: errors.RequestTimeout, 409: errors.Conflict, 413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType, 429: errors.RateLimited, 499: errors.QueueFull,
    500: errors.UpstreamError, 504: errors.GatewayTimeout,
}
#: answers after which a request is safe to send again (nothing was done)
_RETRY_STATUS = frozenset({502, 503})


class Unreachable(Exception):
    """The server could not be reached (refused, no such host, timed out)."""

    def __init__(self, base_url: str, reason: str):
        self.base_url = base_url
        self.reason = reason
        super().__init__(f"cannot reach gengate at {base_url} ({reason})")


class WaitTimeout(TimeoutError):
    """:meth:`AsyncClient.wait` gave up; the job goes on (``job`` is its last state)."""

    def __init__(self, job: Job, timeout: float):
        self.job = job
        super().__init__(f"job {job.id} still {job.status} after {timeout:g}s")


def error_for(status_code: int, message: str, *, data: Any = None,
              headers: Mapping[str, str] | None = None) -> GengateError:
    """The :mod:`gengate.errors` instance for an error envelope."""
    cls = _ERRORS.get(status_code, GengateError)
    exc = cls(message, data=data, headers=dict(headers or {}))
    exc.status_code = status_code
    return exc



class ProductActions:
    """``client.product("flux").generate(prompt=...)``: one method per route of a product,
    each returning the route's answer's ``jobId`` (or the whole answer for a route that
    makes no job)."""

    def __init__(self, client: AsyncClient, product: str):
        self._client = client
        self._product = product

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        table = self._client.actions.get(self._product, {})
        action = table.get(name) or table.get(name.replace("_", "-"))
        if action is None:
            raise AttributeError(f"{self._product} has no action {name!r}; it has "
                                 f"{', '.join(table)}")

        async def call(**fields: Any) -> Any:
            return await self._client.submit(self._product, action.name, **fields)

        return call


class AsyncClient:
    """An asynchronous client of one gengate server and key."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0,
                 retries: int = 2, registry: Registry | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.actions = actions(registry)
        self._products = {p.name: p for p in (registry if registry is not None
                                              else builtin())}
        self._job_products: dict[str, str] = {}
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout,
                                       transport=transport,
                                       headers={"TT-API-KEY": api_key})

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the wire -------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, json: Any = None,
                      params: Mapping[str, Any] | None = None,
                      form: Form | None = None,
                      idempotency_key: str | None = None) -> dict[str, Any]:
        """One call; the answer's body, or the server's error raised. Retried after a
        broken connection or a 502/503 when safe: a read, or a write with an
        Idempotency-Key (a refused connection always, as nothing was sent)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        safe = method == "GET" or idempotency_key is not None
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, headers=headers,
                    data=form[0] if form else None, files=form[1] if form else None)
            except httpx.ConnectError as exc:
                if last:
                    raise Unreachable(self.base_url, _reason(exc)) from exc
            except httpx.TransportError as exc:
                if last or not safe:
                    raise Unreachable(self.base_url, _reason(exc)) from exc
            else:
                if response.status_code in _RETRY_STATUS and safe and not last:
                    pass
                else:
                    return _answer(response)
            await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def action_of(self, product: str, action: str) -> Action:
        if product not in self.actions:
            raise errors.NotFound(f"product: unknown product `{product}`; this client knows "
                                  f"{', '.join(self.actions)}")
        table = self.actions[product]
        if action not in table:
            raise errors.NotFound(f"{product}: no action `{action}`; it has "
                                  f"{', '.join(table)}")
        return table[action]

    async def call(self, product: str, action: str, /, **fields: Any) -> dict[str, Any]:
        """A product's route with these fields (``@path`` values become data URLs);
        the whole answer."""
        route = self.action_of(product, action)
        route.check(fields)
        if route.multipart:
            return await self.request("POST", route.path, form=form_of(fields),
                                      idempotency_key=str(uuid.uuid4()))
        body = {k: file_field(v) for k, v in fields.items() if v is not None}
        if route.method == "GET":
            params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in body.items()}
            return await self.request("GET", route.path, params=params)
        return await self.request("POST", route.path, json=body,
                                  idempotency_key=str(uuid.uuid4()))

    async def submit(self, product: str, action: str, /, **fields: Any) -> Any:
        """Submit a job; its ``jobId`` (a route that makes no job: its answer's data)."""
        answer = await self.call(product, action, **fields)
        job_id = job_id_of(answer)
        if job_id is None:
            return answer.get("data")
        self._job_products[job_id] = product
        return job_id

    def product(self, name: str) -> ProductActions:
        """One method per route of product ``name``."""
        self.action_of(name, next(iter(self.actions.get(name, {})), ""))
        return ProductActions(self, name)

    # -- jobs ---------------------------------------------------------------------------
    def _job(self, job_id: str, product: str, body: dict[str, Any]) -> Job:
        statuses = self._products[product].statuses if product in self._products else None
        job = Job(job_id, product, body)
        if statuses is not None:
            job.success_status, job.failed_status = statuses.success, statuses.failed
        return job

    async def fetch(self, job_id: str, product: str | None = None) -> Job:
        """The job's fetch answer. Without ``product``, each product's fetch is asked in
        turn (a fetch answers its own product's jobs only)."""
        product = product or self._job_products.get(job_id)
        candidates = [product] if product else list(self._products)
        for name in candidates:
            path = self._products[name].fetch_path if name in self._products else ""
            if not path:
                continue
            try:
                body = await self.request("GET", path, params={"jobId": job_id})
            except errors.NotFound:
                if product:
                    raise
                continue
            self._job_products[job_id] = name
            return self._job(job_id, name, body)
        raise errors.NotFound(f"jobId: job {job_id} not found")

    async def wait(self, job_id: str, *, product: str | None = None, timeout: float = 1500.0,
                   interval: float = 1.0, on_progress: ProgressCallback | None = None) -> Job:
        """Poll the job until it ends (SUCCESS or FAILED as its product spells them);
        ``on_progress`` hears each change. :class:`WaitTimeout` past ``timeout`` seconds."""
        started = time.monotonic()
        deadline = started + timeout
        last: dict[str, Any] | None = None
        while True:
            try:
                job = await self.fetch(job_id, product)
            except errors.RateLimited:
                await asyncio.sleep(interval)
                continue
            product = job.product
            job.started = started
            if on_progress is not None and job.body != last:
                on_progress(job)
            last = job.body
            if job.done:
                return job
            if time.monotonic() >= deadline:
                raise WaitTimeout(job, timeout)
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    async def run(self, product: str, action: str, /, *, timeout: float = 1500.0,
                  interval: float = 1.0, on_progress: ProgressCallback | None = None,
                  **fields: Any) -> Job:
        """Submit and wait."""
        job_id = await self.submit(product, action, **fields)
        return await self.wait(job_id, product=product, timeout=timeout, interval=interval,
                               on_progress=on_progress)

    async def list_jobs(self, *, product: str | None = None, status: str | None = None,
                   page: int = 1, limit: int = 10) -> list[dict[str, Any]]:
        """Your jobs across products, newest first (``/jobs/list``)."""
        params: dict[str, Any] = {"page": page, "limit": limit}
        params.update({k: v for k, v in {"product": product, "status": status}.items() if v})
        data = (await self.request("GET", "/jobs/list", params=params)).get("data")
        return list(data) if isinstance(data, list) else []

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job of any product; the job as it now stands."""
        body = await self.request("POST", "/jobs/cancel", json={"jobId": job_id})
        data = body.get("data") or {}
        product = self._job_products.get(job_id) or product_of(data, self._products)
        return self._job(job_id, product, data)

    async def info(self) -> dict[str, Any]:
        """Your balance, frozen quota, max_queue and jobs in progress."""
        data = (await self.request("GET", "/midjourney/v1/info")).get("data")
        return dict(data) if isinstance(data, dict) else {}

    # -- Midjourney ----------------------------------------------------------------------
    async def imagine(self, prompt: str, *, mode: str = "fast", get_u_images: bool = True,
                      **fields: Any) -> str:
        """Submit a Midjourney imagine job; its id."""
        return str(await self.submit("midjourney", "imagine", prompt=prompt, mode=mode,
                                     getUImages=get_u_images, **fields))

    async def action(self, job_id: str, action: str, **fields: Any) -> str:
        """Run a button (``upsample1``, ``variation2``, ``zoom_out_2``...) on a job."""
        return str(await self.submit("midjourney", "action", jobId=job_id, action=action,
                                     **fields))

    async def blend(self, images: list[str | bytes | Path], *, dimensions: str = "SQUARE",
                    mode: str = "fast", **fields: Any) -> str:
        """Blend 2 to 5 images (data URLs, bytes or paths)."""
        return str(await self.submit("midjourney", "blend", imgBase64Array=list(images),
                                     dimensions=dimensions, mode=mode, **fields))

    async def describe(self, image: str | bytes | Path, *, mode: str = "fast",
                       **fields: Any) -> str:
        """Four prompts for an image (a data URL, bytes, a path, or an https URL)."""
        if isinstance(image, str) and image.startswith(("http://", "https://")):
            return str(await self.submit("midjourney", "describe", url=image, mode=mode,
                                         **fields))
        return str(await self.submit("midjourney", "describe", base64=image, mode=mode,
                                     **fields))

    async def seed(self, job_id: str, **fields: Any) -> str:
        """The seed of a finished job (a job of its own)."""
        return str(await self.submit("midjourney", "seed", jobId=job_id, **fields))


#: the former name of :class:`AsyncClient`
GengateClient = AsyncClient


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict):
        return body
    message = (body.get("message") if isinstance(body, dict) else None) or \
        response.reason_phrase or f"HTTP {response.status_code}"
    data = body.get("data") if isinstance(body, dict) else None
    raise error_for(response.status_code, str(message), data=data,
                    headers=response.headers)


class Client:
    """The synchronous client: the methods of :class:`AsyncClient`, run on a private event
    loop (not to be used from inside a running event loop)."""

    def __init__(self, base_url: str, api_key: str, **options: Any):
        self._loop = asyncio.new_event_loop()
        self._async = AsyncClient(base_url, api_key, **options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._async.aclose())
            self._loop.close()

    def _run(self, awaitable: Awaitable[Any]) -> Any:
        async def run() -> Any:
            return await awaitable

        return self._loop.run_until_complete(run())

    @property
    def actions(self) -> dict[str, dict[str, Action]]:
        return self._async.actions

    def call(self, product: str, action: str, /, **fields: Any) -> dict[str, Any]:
        return dict(self._run(self._async.call(product, action, **fields)))

    def submit(self, product: str, action: str, /, **fields: Any) -> Any:
        return self._run(self._async.submit(product, action, **fields))

    def fetch(self, job_id: str, product: str | None = None) -> Job:
        job: Job = self._run(self._async.fetch(job_id, product))
        return job

    def wait(self, job_id: str, *, product: str | None = None, timeout: float = 1500.0,
             interval: float = 1.0, on_progress: ProgressCallback | None = None) -> Job:
        job: Job = self._run(self._async.wait(job_id, product=product, timeout=timeout,
                                              interval=interval, on_progress=on_progress))
        return job

    def run(self, product: str, action: str, /, *, timeout: float = 1500.0,
            interval: float = 1.0, on_progress: ProgressCallback | None = None,
            **fields: Any) -> Job:
        job: Job = self._run(self._async.run(product, action, timeout=timeout,
                                             interval=interval, on_progress=on_progress,
                                             **fields))
        return job

    def list_jobs(self, *, product: str | None = None, status: str | None = None,
             page: int = 1, limit: int = 10) -> list[dict[str, Any]]:
        return list(self._run(self._async.list_jobs(product=product, status=status, page=page,
                                               limit=limit)))

    def cancel(self, job_id: str) -> Job:
        job: Job = self._run(self._async.cancel(job_id))
        return job

    def info(self) -> dict[str, Any]:
        return dict(self._run(self._async.info()))

    def imagine(self, prompt: str, *, mode: str = "fast", get_u_images: bool = True,
                **fields: Any) -> str:
        return str(self._run(self._async.imagine(prompt, mode=mode,
                                                 get_u_images=get_u_images, **fields)))

    def action(self, job_id: str, action: str, **fields: Any) -> str:
        return str(self._run(self._async.action(job_id, action, **fields)))

    def blend(self, images: list[str | bytes | Path], *, dimensions: str = "SQUARE",
              mode: str = "fast", **fields: Any) -> str:
        return str(self._run(self._async.blend(images, dimensions=dimensions, mode=mode,
                                               **fields)))

    def describe(self, image: str | bytes | Path, *, mode: str = "fast", **fields: Any) -> str:
        return str(self._run(self._async.describe(image, mode=mode, **fields)))

    def seed(self, job_id: str, **fields: Any) -> str:
        return str(self._run(self._async.seed(job_id, **fields)))


# -- webhooks ---------------------------------------------------------------------------
def verify_webhook(secret: str, body: bytes | str, headers: Mapping[str, str]) -> dict[str, Any]:
    """The notification's JSON body once its Standard Webhooks signature
    (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) checks out against
    ``secret`` (``whsec_...``, from ``GET /webhooks/secret``); a
    :class:`~gengate.errors.Unauthorized` otherwise (forged, altered, or older than 5
    minutes)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        payload = Webhook(secret).verify(body, lowered)
    except WebhookVerificationError as exc:
        raise errors.Unauthorized(f"webhook: {exc}") from None
    return dict(payload) if isinstance(payload, dict) else {"payload": payload}

