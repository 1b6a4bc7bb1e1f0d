"""Midjourney: the TTAPI Midjourney front (imagine, actions, blend, describe, seed,
inpaint, fetch), its prompt grammar and filter, the imaging of its local renderer, and
its upstream adapters (midjourney-proxy, a TTAPI-compatible upstream)."""

from gengate.products.midjourney.options import MidjourneyOptions
from gengate.products.midjourney.product import PRODUCT, MidjourneyProduct

__all__ = ["PRODUCT", "MidjourneyOptions", "MidjourneyProduct"]
