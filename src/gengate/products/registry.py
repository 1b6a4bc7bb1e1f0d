"""The products this gateway serves: one line per product.

Adding a product is one package under ``gengate.products`` plus one line in
:data:`BUILTIN`. A deployment (or a test) may build a :class:`Registry` with products of
its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from gengate.errors import NotFound
from gengate.jobs import Job
from gengate.products.base import Product, ProductRoute

if TYPE_CHECKING:
    from gengate.config import Settings

__all__ = ["BUILTIN", "Registry", "builtin"]

#: "module:attribute" of each built-in product object
BUILTIN: tuple[str, ...] = (
    "gengate.products.midjourney:PRODUCT",
    "gengate.products.flux:PRODUCT",
    "gengate.products.gpt_image:PRODUCT",
    "gengate.products.gemini_image:PRODUCT",
    "gengate.products.openai_images:PRODUCT",
    "gengate.products.sora:PRODUCT",
    "gengate.products.gemini_video:PRODUCT",
    "gengate.products.suno:PRODUCT",
)


class Registry:
    """Products by name, their routes by path, and the merged default prices."""

    def __init__(self, products: Iterable[Product[Any]]):
        self._products: dict[str, Product[Any]] = {}
        self._routes: dict[str, tuple[Product[Any], ProductRoute]] = {}
        for product in products:
            self.add(product)

    def add(self, product: Product[Any]) -> None:
        if product.name in self._products:
            raise ValueError(f"product {product.name!r} is registered twice")
        routes = list(product.routes())
        for route in routes:
            if route.path in self._routes:
                raise ValueError(f"path {route.path} is claimed by two products")
        self._products[product.name] = product
        for route in routes:
            self._routes[route.path] = (product, route)

    def __iter__(self) -> Iterator[Product[Any]]:
        return iter(self._products.values())

    def __contains__(self, name: object) -> bool:
        return name in self._products

    @property
    def names(self) -> list[str]:
        return list(self._products)

    def get(self, name: str) -> Product[Any]:
        try:
            return self._products[name]
        except KeyError:
            raise NotFound(f"product: unknown product `{name}`") from None

    def of(self, job: Job) -> Product[Any]:
        return self.get(job.product)

    def routes(self) -> dict[str, tuple[Product[Any], ProductRoute]]:
        """path -> (product, route), every product's paths."""
        return dict(self._routes)

    def prices(self, hosting: bool = False) -> dict[str, float]:
        """Every product's default price entries (``product:action:variant``)."""
        out: dict[str, float] = {}
        for product in self:
            out.update(product.prices(hosting))
        return out

    def fetch_body(self, job: Job) -> dict[str, Any]:
        """The job's fetch (and webhook) body, in its product's shape."""
        return self.of(job).fetch_body(job)


def builtin(settings: Settings | None = None) -> Registry:
    """A registry of the built-in products (imported now, not at module import), each
    configured by ``settings`` when given."""
    products: list[Product[Any]] = []
    for spec in BUILTIN:
        module, _, attr = spec.partition(":")
        product: Product[Any] = getattr(importlib.import_module(module), attr)
        products.append(product.configured(settings) if settings is not None else product)
    return Registry(products)
