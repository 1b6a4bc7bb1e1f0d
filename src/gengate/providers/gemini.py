"""Google's Gemini API as an upstream of the Gemini image product.

``POST /v1beta/models/{model}:generateContent`` with the key in ``x-goog-api-key``
(ai.google.dev/api/generate-content, ai.google.dev/gemini-api/docs/image-generation): the
prompt and reference images (``inline_data``, base64) in ``contents``;
``generationConfig.responseModalities`` ``["TEXT", "IMAGE"]``; ``imageConfig.aspectRatio``
and ``imageConfig.imageSize`` (``1K|2K|4K``); ``tools: [{"google_search": {}}]`` for
grounding; ``thinkingConfig.thinkingLevel`` on Gemini 3 models. The picture comes back
inline, base64, in ``candidates[0].content.parts[].inlineData``. A refused prompt has no
candidates and a ``promptFeedback.blockReason``; a refused picture ends with a
``finishReason`` such as ``IMAGE_SAFETY``. Errors are ``{"error": {"code", "message",
"status"}}`` (ai.google.dev/gemini-api/docs/troubleshooting: 400 ``INVALID_ARGUMENT``,
403 ``PERMISSION_DENIED``, 429 ``RESOURCE_EXHAUSTED``, 500 ``INTERNAL``, 503
``UNAVAILABLE``); a wrong key is 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``.

The request is answered inline, so it runs in the background (:class:`InlineProvider`).
TTAPI's ``gemini-2.5-flash-image-preview`` is served by ``gemini-2.5-flash-image`` (the
preview's successor); ``image_search`` is TTAPI's own switch and has no Gemini API field.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from gengate.products.base import ResultFile
from gengate.providers.base import (
    FailureKind,
    ProviderError,
    ProviderTask,
    ProviderUpdate,
    TaskState,
)
from gengate.providers.inline import InlineProvider
from gengate.providers.upstream_http import json_object, retry_after, scrub, transport_error

__all__ = ["MODELS", "GoogleGeminiProvider", "build_body", "read_answer"]

#: TTAPI's model names -> the Gemini API's
MODELS = {"gemini-2.5-flash-image-preview": "gemini-2.5-flash-image",
          "gemini-2.5-flash-image": "gemini-2.5-flash-image",
          "gemini-3-pro-image-preview": "gemini-3-pro-image-preview",
          "gemini-3.1-flash-image-preview": "gemini-3.1-flash-image-preview"}
#: finish reasons that mean the picture was withheld for safety or policy
_REFUSED = ("SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII",
            "RECITATION", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION")


class GoogleGeminiProvider(InlineProvider):
    """One Gemini API key."""

    name = "google"

    def __init__(self, base_url: str, *, api_key: str, http: httpx.AsyncClient,
                 timeout: float = 600.0, poll_interval: float = 1.0):
        super().__init__(poll_interval)
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._headers = {"x-goog-api-key": api_key}
        self._http = http
        self._timeout = httpx.Timeout(timeout, connect=10.0)

    def __repr__(self) -> str:
        return f"GoogleGeminiProvider({self.base_url!r})"

    def check(self, task: ProviderTask) -> None:
        model = str(task.options.get("model") or "")
        if model not in MODELS:
            raise ProviderError(f"[Invalid parameter] the Gemini API does not serve {model}")

    async def call(self, task: ProviderTask) -> ProviderUpdate:
        model = MODELS[str(task.options.get("model"))]
        url = f"{self.base_url}/v1beta/models/{model}:generateContent"
        try:
            response = await self._http.post(url, json=build_body(task, model),
                                             headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._key) from None
        if response.status_code != 200:
            raise self._failure(response)
        return read_answer(json_object(response))

    async def probe(self) -> None:
        """``GET /v1beta/models`` costs nothing and shows whether the key is taken."""
        try:
            response = await self._http.get(f"{self.base_url}/v1beta/models",
                                            headers=self._headers, timeout=httpx.Timeout(30.0))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._key) from None
        if response.status_code != 200:
            raise self._failure(response)

    def _failure(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        payload = json_object(response)
        error = payload.get("error") if payload else None
        error = error if isinstance(error, dict) else {}
        message = scrub(str(error.get("message") or f"HTTP {status}"), self._key)[:300]
        if status in (401, 403) or "API_KEY_INVALID" in str(error.get("details", "")) or (
                "API key not valid" in message):
            return ProviderError("[Upstream account] the upstream rejected the account's key",
                                 kind=FailureKind.AUTH)
        if status == 429:
            return ProviderError("[Upstream account] the upstream is rate limiting the account",
                                 kind=FailureKind.RATE_LIMITED,
                                 retry_after=retry_after(response.headers.get("retry-after")))
        if status in (400, 404) and payload is not None:
            return ProviderError(f"[Invalid parameter] {message}")
        return ProviderError(f"[Upstream unavailable] HTTP {status}: {message}",
                             kind=FailureKind.UNAVAILABLE)


def build_body(task: ProviderTask, model: str) -> dict[str, Any]:
    """The ``generateContent`` body of a Gemini image task."""
    options = task.options
    parts: list[dict[str, Any]] = [{"text": task.prompt}]
    for data in task.images:
        parts.append({"inline_data": {"mime_type": _media_type(data),
                                      "data": base64.b64encode(data).decode("ascii")}})
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    image_config = {"aspectRatio": str(options.get("aspect_ratio") or "1:1")}
    if not model.startswith("gemini-2.5"):
        image_config["imageSize"] = str(options.get("image_size") or "1K")
        if options.get("thinking_level"):
            config["thinkingConfig"] = {"thinkingLevel": str(options["thinking_level"]).lower()}
    config["imageConfig"] = image_config
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}],
                            "generationConfig": config}
    if options.get("google_search"):
        body["tools"] = [{"google_search": {}}]
    return body


def read_answer(payload: dict[str, Any] | None) -> ProviderUpdate:
    """The first inline image of the first candidate, as a finished task."""
    if payload is None:
        return _failed("[Bad response] the upstream's answer is not JSON")
    feedback = payload.get("promptFeedback")
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            return _failed(f"[Content Moderated] the prompt was blocked ({reason})")
        return _failed("[Bad response] the upstream answered no candidate")
    first = candidates[0] if isinstance(candidates[0], dict) else {}
    content = first.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    text: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, dict) and isinstance(inline.get("data"), str):
            try:
                data = base64.b64decode(inline["data"], validate=True)
            except ValueError:
                return _failed("[Bad response] the upstream's image is not base64")
            mime = inline.get("mimeType") or inline.get("mime_type") or _media_type(data)
            extra = {"text": " ".join(text)} if text else {}
            return ProviderUpdate(TaskState.SUCCESS, progress=100, data=extra, files=(
                ResultFile("image", data=data, content_type=str(mime)),))
        if isinstance(part.get("text"), str):
            text.append(part["text"])
    reason = first.get("finishReason")
    if reason in _REFUSED:
        return _failed(f"[Content Moderated] the picture was withheld ({reason})")
    said = (": " + " ".join(text)[:200]) if text else ""
    return _failed(f"[Bad response] the upstream answered no image{said}")


def _failed(message: str) -> ProviderUpdate:
    return ProviderUpdate(TaskState.FAILED, message=message)


def _media_type(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"
