"""The OpenAPI document tells the truth: every reference resolves, fields the server
refuses empty say so, and a 405 names the methods the path takes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gengate.api.app import create_app
from gengate.api.openapi import openapi_document
from gengate.config import Settings


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves() -> None:
    doc = openapi_document()
    refs = set(_refs(doc))
    assert "#/components/schemas/Mode" in refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
    assert doc["components"]["schemas"]["Mode"]["enum"] == ["fast", "relax", "turbo"]


@pytest.mark.parametrize(("schema", "field"), [
    ("ImagineRequest", "prompt"), ("PromptCheckRequest", "prompt"),
    ("ActionRequest", "jobId"), ("ActionRequest", "action"), ("SeedRequest", "jobId"),
    ("InpaintRequest", "jobId"), ("FetchRequest", "jobId"), ("HoldAccountAdd", "baseUrl"),
])
def test_fields_the_server_refuses_empty_have_a_minimum_length(schema: str, field: str) -> None:
    prop = openapi_document()["components"]["schemas"][schema]["properties"][field]
    assert prop["minLength"] >= 1


def test_optional_base_urls_may_not_be_empty_either() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for name in ("CreateAccountRequest", "UpdateAccountRequest", "HoldAccountUpdate"):
        options = schemas[name]["properties"]["baseUrl"]["anyOf"]
        assert {"type": "string", "minLength": 1, "maxLength": 2048} in options


def test_pages_and_amounts_have_bounds() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    for name in ("FetchListQuery", "DeliveriesQuery"):
        assert schemas[name]["properties"]["page"]["maximum"] == 1_000_000
    amount = schemas["TopUpRequest"]["properties"]["amount"]
    assert amount["minimum"] == -amount["maximum"] == -10**12
    usage = {p["name"]: p["schema"] for p in doc["paths"]["/v1/usage"]["get"]["parameters"]}
    assert usage["limit"] == {"type": "integer", "minimum": 1, "maximum": 500}


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/admin/users/1", {"GET", "PATCH"}),
    ("PUT", "/admin/users", {"GET", "POST"}),
    ("PUT", "/admin/accounts/7", {"GET", "PATCH", "DELETE"}),
    ("DELETE", "/midjourney/v1/fetch", {"GET", "POST"}),
    ("GET", "/midjourney/v1/imagine", {"POST"}),
    ("POST", "/v1/models", {"GET"}),
])
async def test_405_lists_the_methods_of_the_document(settings: Settings, method: str, path: str,
                                                     allowed: set[str]) -> None:
    documented = {m.upper() for m in openapi_document()["paths"][path.replace(
        "/1", "/{user_id}").replace("/7", "/{account_id}")]}
    assert documented == allowed
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                 base_url="http://gengate") as client:
        response = await client.request(method, path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) - {"HEAD"} == allowed
