"""Adding a product is one package and one registry line: a small product defined here,
registered beside Midjourney, runs end to end through the engine (submit, charge, run on
the local renderer, store, fetch, webhook, refund on failure, cancel, the neutral list)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from PIL import Image
from pydantic import BaseModel, Field

from gengate.api import schemas as s
from gengate.api.call import Call
from gengate.config import Settings
from gengate.jobs import Job
from gengate.products.base import (
    GET_POST,
    POST,
    THREE_STATUSES,
    JobRequest,
    LocalRenderer,
    Options,
    Product,
    ProductRoute,
    Services,
    fetch_handler,
    submitted,
)
from gengate.products.midjourney import PRODUCT as MIDJOURNEY
from gengate.products.registry import Registry
from gengate.providers.base import ProviderTask, ProviderUpdate, ResultFile, TaskState
from gengate.testing import Gateway, WebhookReceiver, serve_gateway


@dataclass(frozen=True, slots=True)
class SwatchOptions(Options):
    side: int = 64
    colour: str = "teal"


class SwatchRequest(BaseModel):
    """POST /swatch/generate"""

    prompt: str = Field(min_length=1, max_length=200)
    side: int = Field(64, ge=8, le=256)
    hookUrl: str | None = None


class SwatchRenderer:
    """A square of one colour; a prompt with "broken" fails, as an upstream would."""

    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        if "broken" in task.prompt:
            return ProviderUpdate(TaskState.FAILED, message="[Swatch] the paint ran out")
        options = SwatchOptions.from_json(task.options)
        out = io.BytesIO()
        Image.new("RGB", (options.side, options.side), options.colour).save(out, "PNG")
        return ProviderUpdate(TaskState.SUCCESS, progress=100,
                              files=(ResultFile("image", out.getvalue(), "image/png"),))


class SwatchProduct(Product[SwatchOptions]):
    name = "swatch"
    title = "Swatch"
    options_type = SwatchOptions
    statuses = THREE_STATUSES
    default_prices = {"generate:*": 3}
    fetch_path = "/swatch/fetch"

    def routes(self) -> Sequence[ProductRoute]:
        async def generate(services: Services, call: Call) -> Any:
            req: SwatchRequest = s.parse(SwatchRequest, call.data())  # type: ignore
            colour = req.prompt.split()[-1]
            job = await services.jobs.submit(self, call.submit(hook_url=req.hookUrl), JobRequest(
                action="generate", variant="basic", prompt=req.prompt,
                options=SwatchOptions(side=req.side, colour=colour)))
            return submitted(job)

        async def paint_now(services: Services, call: Call) -> Any:
            """A synchronous route: answers when the job ends (504 with its id if not)."""
            req: SwatchRequest = s.parse(SwatchRequest, call.data())  # type: ignore
            job = await services.jobs.submit(self, call.submit(), JobRequest(
                action="generate", variant="basic", prompt=req.prompt,
                options=SwatchOptions(side=req.side, colour=req.prompt.split()[-1])))
            ended = await services.jobs.wait(call.user_id, job.id, timeout=5.0)
            return self.fetch_body(ended)

        return [ProductRoute("/swatch/generate", POST, generate, SwatchRequest,
                             "Paint a swatch"),
                ProductRoute("/swatch/paint", POST, paint_now, SwatchRequest,
                             "Paint a swatch and wait for it", sync=True),
                ProductRoute("/swatch/fetch", GET_POST, fetch_handler(self), None,
                             "Fetch a swatch job")]

    def fetch_body(self, job: Job) -> dict[str, Any]:
        files = job.result.get("outputs") or [{}]
        return {"status": self.statuses.wire(job.status),
                "message": job.message if job.status.terminal else None,
                "jobId": job.id,
                "data": {"prompt": job.prompt, "imageUrl": files[0].get("url"),
                         "quota": "3", "hookUrl": job.hook_url}}

    def renderer(self) -> LocalRenderer:
        return SwatchRenderer()


def _settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow": "127.0.0.1"})


async def _ended(gw: Gateway, key: str, job_id: str) -> dict[str, Any]:
    client = gw.client(key)
    async with asyncio.timeout(20):
        while True:
            body: dict[str, Any] = (
                await client.get("/swatch/fetch", params={"jobId": job_id})).json()
            if body["status"] in ("SUCCESS", "FAILED"):
                return body
            assert body["status"] == "ON_QUEUE"  # the product's own spelling while queued
            await asyncio.sleep(0.02)


async def _balance(gw: Gateway, key: str) -> tuple[float, float]:
    data = (await gw.client(key).get("/midjourney/v1/info")).json()["data"]
    return data["balance"], data["freeze_balance"]


async def test_a_product_defined_here_runs_end_to_end(settings: Settings) -> None:
    registry = Registry([MIDJOURNEY, SwatchProduct()])
    async with WebhookReceiver() as receiver, \
            serve_gateway(_settings(settings), products=registry) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        made = await client.post("/swatch/generate", json={
            "prompt": "a swatch of crimson", "side": 48, "hookUrl": receiver.url})
        assert made.status_code == 200, made.text
        job_id = made.json()["data"]["jobId"]
        body = await _ended(gw, key, job_id)
        assert body["status"] == "SUCCESS" and body["data"]["prompt"] == "a swatch of crimson"
        # the stored file is the one the renderer made, served from gengate's own storage
        png = (await gw.http.get(body["data"]["imageUrl"].replace(gw.base_url, ""))).content
        image = Image.open(io.BytesIO(png))
        assert image.size == (48, 48) and image.getpixel((0, 0)) == (220, 20, 60)
        assert await _balance(gw, key) == (7, 0)  # charged the product's price once
        hook = await receiver.next()
        assert orjson.loads(hook.body) == body  # the webhook body is the fetch body

        # an upstream failure refunds, and the webhook says so
        broken = await client.post("/swatch/generate", json={
            "prompt": "a broken swatch of teal", "hookUrl": receiver.url})
        failed = await _ended(gw, key, broken.json()["data"]["jobId"])
        assert failed["status"] == "FAILED" and failed["message"] == "[Swatch] the paint ran out"
        assert await _balance(gw, key) == (7, 0)
        assert orjson.loads((await receiver.next()).body)["status"] == "FAILED"

        # bad input: the product's own validation, in the envelope, nothing charged
        bad = await client.post("/swatch/generate", json={"prompt": "x", "side": 4})
        assert bad.status_code == 400 and bad.json()["message"].startswith("side:")
        assert await _balance(gw, key) == (7, 0)

        # another product's fetch path does not show it; the neutral list shows both
        other = await client.get("/swatch/fetch", params={"jobId": "nope"})
        assert other.status_code == 404
        elsewhere = await client.get("/midjourney/v1/fetch", params={"jobId": job_id})
        assert elsewhere.status_code == 404
        listed = (await client.get("/jobs/list", params={"product": "swatch"})).json()["data"]
        assert [(j["product"], j["status"]) for j in listed] == [
            ("swatch", "FAILED"), ("swatch", "SUCCESS")]
        assert listed[1]["fetch"] == "/swatch/fetch"
        # the status page has a line for it
        status = (await gw.http.get("/status.json")).json()["data"]
        assert status["swatch"]["finished"] == 2 and status["swatch"]["successRate"] == 0.5
        doc = (await gw.http.get("/openapi.json")).json()
        assert "/swatch/generate" in doc["paths"] and "SwatchFetchBody" in (
            doc["components"]["schemas"])


async def test_a_product_has_its_own_queue_cap(settings: Settings) -> None:
    registry = Registry([MIDJOURNEY, SwatchProduct()])
    capped = settings.model_copy(update={"max_queue_per_product": {"swatch": 1}})
    async with serve_gateway(capped, products=registry, with_worker=False) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        first = await client.post("/swatch/generate", json={"prompt": "a swatch of red"})
        assert first.status_code == 200
        second = await client.post("/swatch/generate", json={"prompt": "a swatch of red"})
        assert second.status_code == 499 and "swatch" in second.json()["message"]
        # Midjourney's queue is another product's: still open
        mj = await client.post("/midjourney/v1/imagine", json={"prompt": "a cat"})
        assert mj.status_code == 200
        assert await _balance(gw, key) == (5, 5)


async def test_accounts_name_the_products_they_run(settings: Settings) -> None:
    registry = Registry([MIDJOURNEY, SwatchProduct()])
    async with serve_gateway(settings, products=registry) as gw:
        admin = {"Authorization": f"Bearer {gw.admin_key}"}
        local = (await gw.http.get("/admin/accounts", headers=admin)).json()["data"][0]
        assert local["products"] == ["*"]
        # a TTAPI account can run Midjourney, not a product without a TTAPI adapter
        refused = await gw.http.post("/admin/accounts", headers=admin, json={
            "name": "tt", "provider": "ttapi", "baseUrl": "https://api.example.com",
            "apiKey": "k", "products": ["swatch"]})
        assert refused.status_code == 400
        assert refused.json()["message"] == (
            "products: a ttapi account cannot run `swatch`; it runs midjourney")
        # with the local account running only Midjourney, nothing can run a swatch
        changed = await gw.http.patch(f"/admin/accounts/{local['id']}", headers=admin,
                                      json={"products": ["midjourney"]})
        assert changed.json()["data"]["products"] == ["midjourney"]
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        none = await client.post("/swatch/generate", json={"prompt": "a swatch of red"})
        assert none.status_code == 400
        assert none.json()["message"] == "No available accounts for swatch (fast mode)"
        made = await client.post("/midjourney/v1/imagine", json={"prompt": "a cat"})
        assert (await gw.wait(client, made.json()["data"]["jobId"]))["status"] == "SUCCESS"
        assert await _balance(gw, key) == (8, 0)
        status = (await gw.http.get("/status.json")).json()["data"]
        assert status["swatch"]["status"] == 503 and status["midjourney"]["slots"] > 0


async def test_a_synchronous_route_waits_for_the_job(settings: Settings) -> None:
    registry = Registry([MIDJOURNEY, SwatchProduct()])
    hanging = settings.model_copy(update={"local_hang_marker": "forever"})
    async with serve_gateway(hanging, products=registry) as gw:
        _, key = await gw.create_user(balance=10)
        client = gw.client(key)
        done = await client.post("/swatch/paint", json={"prompt": "a swatch of navy"})
        assert done.status_code == 200 and done.json()["status"] == "SUCCESS"
        assert done.json()["data"]["imageUrl"].endswith(".png")
        slow = await client.post("/swatch/paint", json={"prompt": "forever navy"})
        assert slow.status_code == 504
        job_id = slow.json()["data"]["jobId"]
        # the job goes on: it is still there, running, and can be fetched later
        later = (await client.get("/swatch/fetch", params={"jobId": job_id})).json()
        assert later["status"] == "ON_QUEUE" and later["message"] is None
