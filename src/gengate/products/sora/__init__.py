"""Sora: TTAPI's ``/sora/...`` routes and OpenAI's ``/v1/videos`` shape, one product."""

from gengate.products.sora.product import PRODUCT, SoraProduct

__all__ = ["PRODUCT", "SoraProduct"]
