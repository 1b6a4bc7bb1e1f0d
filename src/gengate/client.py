"""A small async client for gengate's (and TTAPI's) Midjourney API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

__all__ = ["ApiError", "GengateClient"]


class ApiError(Exception):
    """The server answered an error envelope."""

    def __init__(self, status_code: int, message: str):
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message


class GengateClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0):
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout,
                                       headers={"TT-API-KEY": api_key})

    async def __aenter__(self) -> GengateClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._http.request(method, f"/midjourney/v1/{path}", **kwargs)
        body: dict[str, Any] = response.json()
        if response.status_code != 200:
            raise ApiError(response.status_code, str(body.get("message")))
        return body

    async def imagine(self, prompt: str, *, mode: str = "fast", get_u_images: bool = True,
                      **fields: Any) -> str:
        body = await self._call("POST", "imagine", json={
            "prompt": prompt, "mode": mode, "getUImages": get_u_images, **fields})
        return str(body["data"]["jobId"])

    async def action(self, job_id: str, action: str, **fields: Any) -> str:
        body = await self._call("POST", "action",
                                json={"jobId": job_id, "action": action, **fields})
        return str(body["data"]["jobId"])

    async def fetch(self, job_id: str) -> dict[str, Any]:
        return await self._call("GET", "fetch", params={"jobId": job_id})

    async def info(self) -> dict[str, Any]:
        return (await self._call("GET", "info"))["data"]  # type: ignore[no-any-return]

    async def wait(self, job_id: str, *, interval: float = 1.0, timeout: float = 1500.0,
                   on_update: Any = None) -> dict[str, Any]:
        """Poll fetch until the job ends, as TTAPI's own sample code does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            body = await self.fetch(job_id)
            if on_update is not None:
                on_update(body)
            if body["status"] in ("SUCCESS", "FAILED"):
                return body
            if loop.time() > deadline:
                raise TimeoutError(f"job {job_id} still {body['status']} after {timeout}s")
            await asyncio.sleep(interval)
