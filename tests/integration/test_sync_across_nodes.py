"""A synchronous route on an API node without a worker answers when a worker node ends
the job (PostgreSQL: the job's end is notified across nodes)."""

from __future__ import annotations

from gengate.config import Settings
from gengate.products.midjourney import PRODUCT as MIDJOURNEY
from gengate.products.registry import Registry
from gengate.runtime import Runtime
from gengate.testing import serve_gateway
from tests.acceptance.test_product_registry import SwatchProduct


async def test_a_synchronous_route_hears_a_job_ended_on_another_node(
        pg_url: str, settings: Settings) -> None:
    registry = Registry([MIDJOURNEY, SwatchProduct()])
    shared = settings.model_copy(update={"database_url": pg_url})
    async with serve_gateway(shared, products=registry, with_worker=False) as api:
        worker = await Runtime.start(shared, with_worker=True, products=registry)
        try:
            assert api.runtime.worker is None
            _, key = await api.create_user(balance=10)
            answer = await api.client(key).post("/swatch/paint",
                                                json={"prompt": "a swatch of olive"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "SUCCESS"
            info = (await api.client(key).get("/midjourney/v1/info")).json()["data"]
            assert (info["balance"], info["freeze_balance"]) == (7, 0)
        finally:
            await worker.close()
