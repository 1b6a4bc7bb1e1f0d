"""Gemini image (Nano Banana): the synchronous ``/gemini/image/generate`` and
``/gemini/image/fetch``; upstreams: the built-in renderer, a TTAPI-compatible account,
Google's Gemini API."""

from gengate.products.gemini_image.product import PRODUCT, GeminiImageProduct

__all__ = ["PRODUCT", "GeminiImageProduct"]
