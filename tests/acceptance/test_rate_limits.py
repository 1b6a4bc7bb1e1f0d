"""Rate limits per key and per address, in-process and shared across nodes through Redis."""

from __future__ import annotations

import asyncio

from gengate.config import Settings
from gengate.testing import serve_gateway

from ..conftest import live_redis_url

V1 = "/midjourney/v1"
ADMIN = {"Authorization": "Bearer test-admin-key"}


async def test_per_key_limit_answers_429_with_retry_after(settings: Settings) -> None:
    async with serve_gateway(settings.model_copy(update={"rate_per_minute": 1000}),
                             with_worker=False) as gw:
        user_id, key = await gw.create_user(balance=100)
        _, other_key = await gw.create_user(balance=100)
        patched = await gw.http.patch(f"/admin/users/{user_id}", headers=ADMIN,
                                      json={"rate_per_minute": 5})
        assert patched.json()["data"]["rate_per_minute"] == 5
        client = gw.client(key)
        codes = [(await client.get(f"{V1}/info")).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        limited = await client.get(f"{V1}/info")
        assert limited.json()["status"] == "FAILED" and "per" in limited.json()["message"]
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert (await gw.client(other_key).get(f"{V1}/info")).status_code == 200
        # a user with only a per-second limit keeps the deployment's per-minute one
        await gw.http.patch(f"/admin/users/{user_id}", headers=ADMIN,
                            json={"rate_per_minute": 0})
        assert (await client.get(f"{V1}/info")).status_code == 200


async def test_requests_without_a_valid_key_are_limited_per_address(
        settings: Settings) -> None:
    async with serve_gateway(settings.model_copy(update={"ip_rate_per_second": 3}),
                             with_worker=False) as gw:
        codes = [(await gw.http.get(f"{V1}/info", headers={"TT-API-KEY": f"guess{i}"}))
                 .status_code for i in range(5)]
        assert codes[:3] == [401] * 3 and 429 in codes[3:]


async def test_limits_hold_in_total_across_two_api_nodes(settings: Settings) -> None:
    url = await live_redis_url()
    shared = settings.model_copy(update={"redis_url": url})
    async with serve_gateway(shared, with_worker=False) as one, \
            serve_gateway(shared, with_worker=False) as two:
        user_id, key = await one.create_user(balance=100)
        await one.http.patch(f"/admin/users/{user_id}", headers=ADMIN,
                             json={"rate_per_minute": 10, "rate_per_second": 0})
        clients = [one.client(key), two.client(key)]
        responses = await asyncio.gather(*[
            clients[i % 2].get(f"{V1}/info") for i in range(30)
        ])
        codes = [r.status_code for r in responses]
        assert codes.count(200) == 10 and codes.count(429) == 20
