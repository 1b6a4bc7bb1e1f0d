"""The Midjourney product: its routes, prices, statuses, fetch body, tasks, results,
local renderer and upstream adapters, as the engine sees them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from gengate.jobs import Job, Mode
from gengate.products.base import (
    FOUR_STATUSES,
    AdapterContext,
    AdapterFactory,
    LocalRenderer,
    Product,
    ProductRoute,
    ResultIO,
    StatusSet,
    TaskIO,
)
from gengate.products.midjourney.actions import ACTIONS, ResultKind
from gengate.products.midjourney.options import MidjourneyOptions
from gengate.products.midjourney.submits import Submissions

if TYPE_CHECKING:
    from gengate.config import Settings
    from gengate.providers.base import Provider, ProviderTask, ProviderUpdate

__all__ = ["DEFAULT_HOSTING_PRICES", "DEFAULT_PRICES", "PRODUCT", "MidjourneyOptions",
           "MidjourneyProduct"]

#: ``action:mode`` -> quota; ``*`` matches any action or mode
PRICES: dict[str, float] = {
    "*:fast": 2,
    "*:relax": 1,
    "*:turbo": 4,
    "upscale4:fast": 4,
    "upscale4:relax": 2,
    "upscale4:turbo": 8,
    "redo_upscale4:fast": 4,
    "redo_upscale4:relax": 2,
    "redo_upscale4:turbo": 8,
    "describe:*": 1,
    "seed:*": 0,
}
#: jobs run on a user's own upstream account (/hold): the upstream's time is the user's,
#: so only the gateway's handling is charged
HOSTING_PRICES: dict[str, float] = {"*:*": 0.1, "seed:*": 0}


def _proxy(ctx: AdapterContext) -> Provider:
    from gengate.products.midjourney.providers.midjourney_proxy import MidjourneyProxyProvider

    return MidjourneyProxyProvider(
        ctx.base_url, http=ctx.http, secret=ctx.secrets.get("secret"),
        instance_id=ctx.options.get("instanceId"), poll_interval=ctx.poll_interval,
        timeout=ctx.timeout, protocol=ctx.options.get("protocol"), notify_url=ctx.notify_url)


def _ttapi(ctx: AdapterContext) -> Provider:
    from gengate.products.midjourney.providers.ttapi import TtapiProvider

    return TtapiProvider(ctx.base_url, api_key=ctx.secrets.get("apiKey", ""), http=ctx.http,
                         poll_interval=ctx.poll_interval, timeout=ctx.timeout)


class MidjourneyProduct(Product[MidjourneyOptions]):
    name = "midjourney"
    title = "Midjourney"
    options_type = MidjourneyOptions
    statuses: ClassVar[StatusSet] = FOUR_STATUSES
    default_prices = PRICES
    default_hosting_prices = HOSTING_PRICES
    lanes = (Mode.FAST, Mode.RELAX, Mode.TURBO)
    fetch_path = "/midjourney/v1/fetch"

    def __init__(self, submissions: Submissions | None = None):
        self.submissions = submissions or Submissions(self)

    def configured(self, settings: Settings) -> MidjourneyProduct:
        """A copy with the deployment's banned-words list."""
        from gengate.products.midjourney.prompt import WordFilter

        if not settings.banned_words_file:
            return self
        product = MidjourneyProduct()
        product.submissions = dataclasses.replace(
            product.submissions, product=product,
            word_filter=WordFilter.from_file(settings.banned_words_file))
        return product

    def routes(self) -> Sequence[ProductRoute]:
        from gengate.products.midjourney.routes import routes

        return routes(self)

    def fetch_body(self, job: Job) -> dict[str, Any]:
        from gengate.products.midjourney.wire import fetch_body

        return fetch_body(job)

    def list_item(self, job: Job) -> dict[str, Any]:
        item = super().list_item(job)
        item["mode"] = job.charged()[0]
        return item

    def counts_as_illegal(self, message: str) -> bool:
        from gengate.products.midjourney.prompt import is_illegal_prompt_failure

        return is_illegal_prompt_failure(message)

    async def task(self, job: Job, io: TaskIO, *, with_parent_image: bool) -> ProviderTask:
        from gengate.providers.base import ProviderTask

        parent = await io.job(job.parent_id) if job.parent_id else None
        images = await _inputs(job, parent if with_parent_image else None, io)
        spec = ACTIONS.get(job.action)
        options = self.options(job)
        params: dict[str, Any] = {"timeout": job.timeout}
        if options.parent_seed is not None:
            params["parent_seed"] = options.parent_seed
        return ProviderTask(
            job_id=job.id, action=job.action, prompt=job.prompt,
            mode=job.slot_mode or job.mode.value, seed=options.seed,
            aspect=options.ratio, version=str(options.version),
            arg=spec.arg if spec else None, images=tuple(images), params=params,
            parent_upstream_id=parent.upstream_id if parent is not None else None,
            product=self.name, options=options.to_json(),
        )

    async def store_result(self, job: Job, update: ProviderUpdate,
                           io: ResultIO) -> dict[str, Any]:
        from gengate.products.midjourney.results import store_result

        return await store_result(job, update, io)

    def renderer(self) -> LocalRenderer:
        from gengate.products.midjourney.renderer import MidjourneyRenderer

        return MidjourneyRenderer()

    def adapters(self) -> Mapping[str, AdapterFactory]:
        return {"midjourney_proxy": _proxy, "ttapi": _ttapi}


async def _inputs(job: Job, parent: Job | None, io: TaskIO) -> list[bytes]:
    """The job's own inputs; with ``parent``, the parent's stored image first."""
    from gengate.providers.base import ProviderError

    own = await io.inputs(job)
    url = MidjourneyOptions.from_json(job.params).url
    if job.action == "describe" and not own and url:
        return [await io.download(url, "url")]
    if parent is None or job.action == "seed":
        return own
    source: Job | None = parent
    # a redo re-runs the upscale on the picked image, however many redos came before
    while (job.action.startswith("redo_") and source is not None and source.parent_id
           and source.result.get("kind") == ResultKind.UPSCALED.value):
        source = await io.job(source.parent_id)
    if source is None:
        raise ProviderError("[Bad response] the parent job has no stored image")
    return [await io.parent_file(source.result), *own]


PRODUCT = MidjourneyProduct()
#: the default entries with their product prefix, as the price table holds them
DEFAULT_PRICES = PRODUCT.prices()
DEFAULT_HOSTING_PRICES = PRODUCT.prices(hosting=True)
