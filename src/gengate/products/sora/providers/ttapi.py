"""Sora through TTAPI (``POST /sora/generations``, ``GET /sora/fetch``)."""

from __future__ import annotations

from typing import Any

import httpx

from gengate.products.sora.options import DURATIONS, SoraOptions
from gengate.providers.base import ProviderError, ProviderTask
from gengate.providers.ttapi_video import TtapiVideoProvider, TtapiVideoWire

__all__ = ["sora_ttapi", "ttapi_body"]


def ttapi_body(task: ProviderTask) -> dict[str, Any]:
    """TTAPI's fields for a Sora job (a job from ``/v1/videos`` maps when TTAPI can make
    its duration)."""
    options = SoraOptions.from_json(task.options)
    if options.duration not in DURATIONS[options.model]:
        raise ProviderError(f"[Invalid parameter] TTAPI makes {options.model} videos of "
                            f"{', '.join(map(str, DURATIONS[options.model]))} seconds, "
                            f"not {options.duration}")
    body: dict[str, Any] = {"model": options.model, "prompt": task.prompt,
                            "orientation": options.orientation,
                            "duration": options.duration, "private": options.private}
    if options.model == "sora-2-pro":
        body["size"] = options.size or ("large" if max(options.width, options.height) > 1280
                                        else "small")
    for name, value in (("referImages", list(options.refer_images) or None),
                        ("character_url", options.character_url),
                        ("character_timestamps", options.character_timestamps)):
        if value is not None:
            body[name] = value
    return body


WIRE = TtapiVideoWire("/sora/generations", "/sora/fetch", ttapi_body, "videoUrl",
                      "thumbnailUrl")


def sora_ttapi(base_url: str, *, api_key: str, http: httpx.AsyncClient,
               poll_interval: float, timeout: float) -> TtapiVideoProvider:
    return TtapiVideoProvider(WIRE, base_url, api_key=api_key, http=http,
                              poll_interval=poll_interval, timeout=timeout)
