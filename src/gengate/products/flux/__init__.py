"""Flux: ``/flux/generate``, ``/flux/edits``, ``/bfl/v1/flux-kontext-{pro,max}`` and
``/flux/fetch``; one image per job; upstreams: the built-in renderer, a TTAPI-compatible
account, Black Forest Labs."""

from gengate.products.flux.product import PRODUCT, FluxProduct

__all__ = ["PRODUCT", "FluxProduct"]
