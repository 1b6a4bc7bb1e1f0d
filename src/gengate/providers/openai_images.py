"""OpenAI's Images API as an upstream of the GPT image product.

OpenAI answers an image in the same HTTP request that asks for it (``POST
/v1/images/generations``, or ``POST /v1/images/edits`` as ``multipart/form-data`` when the
job has reference images), base64-encoded in ``data[0].b64_json``. To fit the engine's
submit-then-poll contract, :meth:`OpenAIImagesProvider.submit` starts that request in the
background and answers a local task id at once; :meth:`poll_many` reports it running until
the answer is in. A worker that dies takes the request with it: the task is then unknown
(lost), as for an upstream that forgot it.

TTAPI's GPT image models map onto OpenAI's (:data:`MODELS`); gpt-4o-image is served by
gpt-image-1, the model behind 4o image generation in the API. gpt-image-1 and -1.5 make the
three sizes OpenAI lists (the nearest shape is taken); gpt-image-2 gets the job's size.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx

from gengate.products.base import AdapterContext, ResultFile
from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)
from gengate.providers.inline import InlineProvider
from gengate.providers.upstream_http import json_object, retry_after, scrub, transport_error

__all__ = ["MODELS", "Build", "OpenAIImagesProvider", "openai_images_adapter"]

#: a task as (``generations`` or ``edits``, fields, files)
Build = Callable[[ProviderTask],
                 tuple[str, dict[str, Any], list[tuple[str, tuple[str, bytes, str]]]]]

#: GPT image model -> OpenAI Images model
MODELS = {"gpt-4o-image": "gpt-image-1", "gpt-image-1": "gpt-image-1",
          "gpt-image-1.5": "gpt-image-1.5", "gpt-image-2": "gpt-image-2",
          "gpt-image-2-plus": "gpt-image-2"}
_FIXED_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))
_ACCOUNT_FAILURES: dict[int, tuple[str, FailureKind]] = {
    401: ("[Upstream account] the upstream rejected the account's key", FailureKind.AUTH),
    403: ("[Upstream account] the upstream refused the account access", FailureKind.AUTH),
}


def openai_images_adapter(ctx: AdapterContext) -> OpenAIImagesProvider:
    """The factory the GPT image product registers for accounts of kind ``openai``."""
    return OpenAIImagesProvider(ctx.base_url or "https://api.openai.com",
                                api_key=ctx.secrets.get("apiKey", ""), http=ctx.http,
                                poll_interval=ctx.poll_interval)


class OpenAIImagesProvider(InlineProvider):
    """One OpenAI account: a base URL (without ``/v1``) and its key."""

    name = "openai"
    id_prefix = "oai"

    def __init__(self, base_url: str, *, api_key: str, http: httpx.AsyncClient,
                 poll_interval: float = 1.0, timeout: float = 300.0,
                 build: Build | None = None,
                 read: Callable[[dict[str, Any] | None], ProviderUpdate] | None = None):
        """``build`` / ``read``: the request of a task and the reading of the answer, for
        another product than GPT image (default: :func:`build_request`, :func:`read_answer`)."""
        super().__init__(poll_interval)
        self._build = build or build_request
        self._read = read or read_answer
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self._key = api_key
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._http = http
        self._timeout = httpx.Timeout(timeout, connect=10.0)

    def __repr__(self) -> str:
        return f"OpenAIImagesProvider({self.base_url!r})"

    def check(self, task: ProviderTask) -> None:
        self._build(task)  # refuses what OpenAI would refuse, before any call

    async def call(self, task: ProviderTask) -> ProviderUpdate:
        return await self._run(*self._build(task))

    async def probe(self) -> None:
        """``GET /v1/models`` costs nothing and shows whether the key is taken."""
        try:
            response = await self._http.get(f"{self.base_url}/v1/models", headers=self._headers,
                                            timeout=httpx.Timeout(30.0))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._key) from None
        if response.status_code != 200:
            raise self._failure(response)

    # -- the request ----------------------------------------------------------------------

    async def _run(self, path: str, fields: dict[str, Any],
                   files: list[tuple[str, tuple[str, bytes, str]]]) -> ProviderUpdate:
        url = f"{self.base_url}/v1/images/{path}"
        try:
            if files:
                response = await self._http.post(
                    url, data={k: str(v) for k, v in fields.items()}, files=files,
                    headers=self._headers, timeout=self._timeout)
            else:
                response = await self._http.post(url, json=fields, headers=self._headers,
                                                 timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._key) from None
        if response.status_code != 200:
            raise self._failure(response)
        return self._read(json_object(response))

    def _failure(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        payload = json_object(response)
        error = payload.get("error") if payload else None
        error = error if isinstance(error, dict) else {}
        message = scrub(str(error.get("message") or f"HTTP {status}"), self._key)[:300]
        code = error.get("code")
        if status in _ACCOUNT_FAILURES:
            text, kind = _ACCOUNT_FAILURES[status]
            return ProviderError(text, kind=kind)
        if status == 429:
            if code == "insufficient_quota":
                return ProviderError("[Upstream account] the upstream account's quota is "
                                     "exhausted", kind=FailureKind.AUTH)
            return ProviderError("[Upstream account] the upstream is rate limiting the account",
                                 kind=FailureKind.RATE_LIMITED,
                                 retry_after=retry_after(response.headers.get("retry-after")))
        if code in ("moderation_blocked", "content_policy_violation"):
            return ProviderError(f"[Content Moderated] {message}")
        if status in (400, 404, 413, 422) and payload is not None:
            return ProviderError(f"[Invalid parameter] {message}")
        return ProviderError(f"[Upstream unavailable] HTTP {status}: {message}",
                             kind=FailureKind.UNAVAILABLE)


def build_request(task: ProviderTask) -> tuple[str, dict[str, Any],
                                              list[tuple[str, tuple[str, bytes, str]]]]:
    """The path (``generations`` or ``edits``), fields and files of a GPT image task."""
    options = task.options
    model = str(options.get("model") or "gpt-image-2")
    if model not in MODELS:
        raise ProviderError(f"[Invalid parameter] OpenAI does not serve {model}")
    width, height = int(options.get("width") or 1024), int(options.get("height") or 1024)
    target = MODELS[model]
    if target == "gpt-image-2":
        size = f"{width}x{height}"
    else:
        best = min(_FIXED_SIZES, key=lambda s: abs(s[0] / s[1] - width / height))
        size = f"{best[0]}x{best[1]}"
    fields: dict[str, Any] = {"model": target, "prompt": task.prompt, "n": 1, "size": size}
    if not task.images:
        return "generations", fields, []
    if len(task.images) > 16:
        raise ProviderError("[Invalid parameter] OpenAI takes at most 16 reference images")
    files = [("image[]", (f"reference-{i}.{_extension(data)}", data, _media_type(data)))
             for i, data in enumerate(task.images)]
    return "edits", fields, files


def read_answer(payload: dict[str, Any] | None) -> ProviderUpdate:
    """``{"data": [{"b64_json": ...}]}`` as a finished task."""
    items = payload.get("data") if payload else None
    first = items[0] if isinstance(items, list) and items else None
    encoded = first.get("b64_json") if isinstance(first, dict) else None
    if not isinstance(encoded, str):
        return ProviderUpdate(TaskState.FAILED,
                              message="[Bad response] the upstream answered no image")
    try:
        data = base64.b64decode(encoded, validate=True)
    except ValueError:
        return ProviderUpdate(TaskState.FAILED,
                              message="[Bad response] the upstream's image is not base64")
    fmt = payload.get("output_format") if payload else None
    content_type = {"jpeg": "image/jpeg", "webp": "image/webp"}.get(str(fmt), _media_type(data))
    extra = {}
    revised = first.get("revised_prompt") if isinstance(first, dict) else None
    if isinstance(revised, str):
        extra["revisedPrompt"] = revised
    return ProviderUpdate(TaskState.SUCCESS, progress=100, data=extra,
                          files=(ResultFile("image", data=data, content_type=content_type),))


def _media_type(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


def _extension(data: bytes) -> str:
    return _media_type(data).removeprefix("image/")
