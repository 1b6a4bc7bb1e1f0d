"""TTAPI's synchronous Gemini image route as an upstream (the hosted TTAPI service, or
another gengate): ``POST /gemini/image/generate`` answers
``{"status": "SUCCESS", "data": {"image_url", ...}}`` in the same request
(``reference/products.md`` 3.5; TTAPI advises its api.ttapi.org host for such long calls).
Reference images travel as base64 (TTAPI takes URLs or base64). Failures are read as for
the other TTAPI relays (:class:`~gengate.providers.ttapi_relay.TtapiRelayProvider`): the
account's status codes move the job to another account, anything else fails the job. A 504
(TTAPI's "long-running synchronous request timed out") fails the job rather than sending it
again: the upstream may still be making, and charging for, that picture.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from gengate.products.base import ResultFile
from gengate.providers.base import ProviderError, ProviderTask, ProviderUpdate, TaskState
from gengate.providers.inline import InlineProvider
from gengate.providers.ttapi_relay import TtapiRelayProvider
from gengate.providers.upstream_http import json_object, transport_error

__all__ = ["TtapiGeminiProvider", "build_body"]


class TtapiGeminiProvider(InlineProvider):
    """One TTAPI-compatible account serving Gemini image."""

    name = "ttapi"

    def __init__(self, base_url: str, *, api_key: str, http: httpx.AsyncClient,
                 timeout: float = 600.0, poll_interval: float = 1.0):
        super().__init__(poll_interval)
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._headers = {"TT-API-KEY": api_key}
        self._http = http
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        # the relay's reading of TTAPI's status codes, and its account probe
        self._relay = TtapiRelayProvider(base_url, api_key=api_key, http=http, build=_unused,
                                         fetch_path="/gemini/image/fetch")

    def __repr__(self) -> str:
        return f"TtapiGeminiProvider({self.base_url!r})"

    async def call(self, task: ProviderTask) -> ProviderUpdate:
        try:
            response = await self._http.post(f"{self.base_url}/gemini/image/generate",
                                             json=build_body(task), headers=self._headers,
                                             timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self._key) from None
        payload = json_object(response)
        if response.status_code == 504:
            raise ProviderError("[Upstream timeout] the upstream's synchronous request "
                                "timed out")
        if response.status_code != 200 or payload is None or payload.get("status") != "SUCCESS":
            raise self._relay._failure(response, payload)
        data = payload.get("data")
        url = data.get("image_url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return ProviderUpdate(TaskState.FAILED,
                                  message="[Bad response] the upstream answered no image_url")
        kind = "image/jpeg" if url.split("?")[0].lower().endswith((".jpg", ".jpeg")) else (
            "image/webp" if url.split("?")[0].lower().endswith(".webp") else "image/png")
        return ProviderUpdate(TaskState.SUCCESS, progress=100,
                              files=(ResultFile("image", url=url, content_type=kind),))

    async def probe(self) -> None:
        await self._relay.probe()


def build_body(task: ProviderTask) -> dict[str, Any]:
    """The fields the client sent (every reference image as base64), answered inline."""
    options = task.options
    body: dict[str, Any] = {"prompt": task.prompt, "model": options.get("model"),
                            "aspect_ratio": options.get("aspect_ratio") or "1:1",
                            "image_size": options.get("image_size") or "1K",
                            "sync_return": True}
    if task.images:
        body["refer_images"] = [base64.b64encode(d).decode("ascii") for d in task.images]
    for name in ("google_search", "image_search"):
        if options.get(name):
            body[name] = True
    if options.get("thinking_level"):
        body["thinking_level"] = options["thinking_level"]
    return body


def _unused(task: ProviderTask) -> Any:
    raise AssertionError("the Gemini relay builds its own requests")
