"""The Sora product: TTAPI's routes, prices, statuses, fetch body, the local video
renderer and the upstream adapters (TTAPI relays Sora; OpenAI's video API is Sora's own)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from gengate.api import schemas as s
from gengate.jobs import Job, new_job_id
from gengate.products.base import (
    FOUR_STATUSES,
    GET_POST,
    POST,
    AdapterContext,
    AdapterFactory,
    JobRequest,
    LocalRenderer,
    Product,
    ProductRoute,
    Services,
    StatusSet,
    Submit,
    fetch_handler,
    submitted,
)
from gengate.products.sora.options import SoraOptions, check_ttapi_rules, resolution
from gengate.products.sora.wire import SoraGenerationRequest, fetch_body

if TYPE_CHECKING:
    from gengate.api.call import Call
    from gengate.products.base import Engine
    from gengate.providers.base import Provider

__all__ = ["PRODUCT", "SoraProduct", "seed_of"]

#: per video, by model ([infer]: TTAPI's example charges 3 for sora-2; no table is published)
PRICES: dict[str, float] = {"generations:sora-2": 3, "generations:sora-2-pro": 10}


def seed_of(job_id: str) -> int:
    return int(job_id.replace("-", "")[:8], 16)


def _ttapi(ctx: AdapterContext) -> Provider:
    from gengate.products.sora.providers.ttapi import sora_ttapi

    return sora_ttapi(ctx.base_url, api_key=ctx.secrets.get("apiKey", ""), http=ctx.http,
                      poll_interval=ctx.poll_interval, timeout=ctx.timeout)


def _openai(ctx: AdapterContext) -> Provider:
    from gengate.products.sora.providers.openai import SoraOpenAiProvider

    return SoraOpenAiProvider(ctx.base_url, api_key=ctx.secrets.get("apiKey", ""),
                              http=ctx.http, poll_interval=ctx.poll_interval,
                              timeout=ctx.timeout)


class SoraProduct(Product[SoraOptions]):
    name = "sora"
    title = "Sora"
    options_type = SoraOptions
    statuses: ClassVar[StatusSet] = FOUR_STATUSES
    default_prices = PRICES
    fetch_path = "/sora/fetch"
    #: an OpenAI account runs Sora only when it says so (it may be there for GPT image)
    opt_in_kinds = frozenset({"openai"})

    def routes(self) -> Sequence[ProductRoute]:
        return [
            ProductRoute("/sora/generations", POST, self._generate, SoraGenerationRequest,
                         "Make a Sora video"),
            ProductRoute("/sora/fetch", GET_POST, fetch_handler(self), None,
                         "Fetch a Sora job (free)"),
        ]

    async def _generate(self, services: Services, call: Call) -> Any:
        req: SoraGenerationRequest = s.parse(SoraGenerationRequest, call.data())  # type: ignore
        duration = check_ttapi_rules(req.model, req.duration, req.size,
                                     req.character_timestamps)
        for url, name in ((req.character_url, "character_url"),
                          (req.referImages[0] if req.referImages else None, "referImages")):
            if url is not None:
                await services.jobs.check_url(url, name)
        width, height = resolution(req.model, req.orientation, req.size)
        job_id = new_job_id()
        options = SoraOptions(
            model=req.model, duration=duration, orientation=req.orientation, size=req.size,
            width=width, height=height, refer_images=tuple(req.referImages or ()),
            character_url=req.character_url, character_timestamps=req.character_timestamps,
            private=req.private, seed=req.seed if req.seed is not None else seed_of(job_id))
        sub = call.submit(hook_url=req.hookUrl, timeout=req.timeout)
        return submitted(await self.submit(services.jobs, sub, req.prompt, options, job_id))

    async def submit(self, engine: Engine, sub: Submit, prompt: str, options: SoraOptions,
                     job_id: str, inputs: Sequence[bytes] = ()) -> Job:
        """Admit one video job (both fronts)."""
        return await engine.submit(self, sub, JobRequest(
            action="generations", variant=options.model, options=options, prompt=prompt,
            inputs=inputs, job_id=job_id))

    def fetch_body(self, job: Job) -> dict[str, Any]:
        return fetch_body(job, self.statuses)

    def renderer(self) -> LocalRenderer:
        from gengate.providers.video import VideoRenderer

        return VideoRenderer()

    def adapters(self) -> Mapping[str, AdapterFactory]:
        return {"ttapi": _ttapi, "openai": _openai}


PRODUCT = SoraProduct()
