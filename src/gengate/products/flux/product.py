"""The Flux product object: statuses, prices, the fetch body, the renderer and adapters."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from gengate.jobs import Job, Mode
from gengate.products.base import (
    FOUR_STATUSES,
    GET_POST,
    POST,
    AdapterContext,
    AdapterFactory,
    LocalRenderer,
    ProductRoute,
    StatusSet,
)
from gengate.products.flux.options import EDIT_MODES, MODES, FluxOptions
from gengate.products.flux.render import FluxRenderer
from gengate.products.flux.requests import (
    BflRequest,
    FluxEditsForm,
    FluxFetchRequest,
    FluxGenerateRequest,
)
from gengate.products.flux.routes import FluxRoutes
from gengate.products.images import ImageProduct
from gengate.providers.base import ProviderTask
from gengate.providers.bfl import bfl_adapter
from gengate.providers.ttapi_relay import RelayRequest, TtapiRelayProvider
from gengate.quota import from_milli

__all__ = ["PRODUCT", "FluxProduct"]

#: quota per image by mode (TTAPI's example: 1 for flux-dev); edits cost the same
PRICES = {"flux1-schnell": 1, "flux1-dev": 1, "flux1-pro": 2, "flux-kontext-pro": 2,
          "flux-kontext-max": 4, "flux-2-klein-4b": 1, "flux-2-klein-9b": 1, "flux-2-pro": 2,
          "flux-2-flex": 3, "flux-2-max": 4}
KONTEXT = ("flux-kontext-pro", "flux-kontext-max")


class FluxProduct(ImageProduct):
    name = "flux"
    title = "Flux"
    options_type = FluxOptions
    statuses: ClassVar[StatusSet] = FOUR_STATUSES
    default_prices: ClassVar[Mapping[str, float]] = {
        **{f"generate:{mode}": price for mode, price in PRICES.items()},
        **{f"edits:{mode}": PRICES[mode] for mode in EDIT_MODES},
    }
    lanes = (Mode.FAST,)
    fetch_path = "/flux/fetch"

    def routes(self) -> Sequence[ProductRoute]:
        handlers = FluxRoutes(self)
        return (
            ProductRoute("/flux/generate", POST, handlers.generate, FluxGenerateRequest,
                         "Submit a Flux image job"),
            ProductRoute("/flux/edits", POST, handlers.edits, FluxEditsForm,
                         "Submit a Flux edit of one or more uploaded images (multipart)",
                         images=True),
            *(ProductRoute(f"/bfl/v1/{model}", POST, handlers.bfl(model), BflRequest,
                           f"Submit a {model} job in Black Forest Labs' format", images=True)
              for model in KONTEXT),
            ProductRoute("/flux/fetch", GET_POST, self.fetch_route(), FluxFetchRequest,
                         "Fetch a Flux job (free)"),
        )

    def fetch_body(self, job: Job) -> dict[str, Any]:
        options: FluxOptions = self.options(job)
        result = job.result
        width = result.get("width") or options.width
        height = result.get("height") or options.height
        _, quota = job.charged()
        data = {"mode": options.model, "jobId": job.id, "prompt": job.prompt,
                "quota": str(from_milli(quota)), "size": f"{width}x{height}",
                "imageUrl": result.get("imageUrl"), "hookUrl": job.hook_url}
        return {"status": self.statuses.wire(job.status), "message": job.message,
                "jobId": job.id, "data": data}

    def renderer(self) -> LocalRenderer:
        return FluxRenderer()

    def adapters(self) -> Mapping[str, AdapterFactory]:
        return {"bfl": bfl_adapter, "ttapi": ttapi_adapter}


def ttapi_adapter(ctx: AdapterContext) -> TtapiRelayProvider:
    """A TTAPI-compatible account relays Flux jobs to the same front they came in by."""
    return TtapiRelayProvider(ctx.base_url, api_key=ctx.secrets.get("apiKey", ""),
                              http=ctx.http, build=relay_request, fetch_path="/flux/fetch",
                              poll_interval=ctx.poll_interval)


def relay_request(task: ProviderTask) -> RelayRequest:
    """``/flux/edits`` with the files, ``/bfl/v1/<model>`` with base64 images, or
    ``/flux/generate``, with the fields the client sent."""
    options = FluxOptions.from_json(task.options)
    if task.action == "edits":
        fields = {"prompt": task.prompt, "mode": options.model}
        fields.update({k: v for k, v in (("size", options.size),
                                         ("aspect_ratio", options.aspect_ratio)) if v})
        files = [("image", (f"image-{i}.png", data, "application/octet-stream"))
                 for i, data in enumerate(task.images)]
        return RelayRequest("/flux/edits", fields=fields, files=files)
    if options.front == "bfl":
        body: dict[str, Any] = {"prompt": task.prompt}
        for i, data in enumerate(task.images[:4]):
            body["input_image" if i == 0 else f"input_image_{i + 1}"] = (
                base64.b64encode(data).decode("ascii"))
        for name in ("aspect_ratio", "seed", "output_format", "prompt_upsampling",
                     "safety_tolerance"):
            if getattr(options, name) is not None:
                body[name] = getattr(options, name)
        return RelayRequest(f"/bfl/v1/{options.model}", json=body)
    body = {"prompt": task.prompt, "mode": options.model}
    body.update({k: v for k, v in (("size", options.size),
                                   ("aspect_ratio", options.aspect_ratio)) if v})
    return RelayRequest("/flux/generate", json=body)


assert set(PRICES) == set(MODES)
PRODUCT = FluxProduct()
