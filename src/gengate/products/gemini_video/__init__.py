"""Gemini video: TTAPI's ``/gemini/video/...`` routes."""

from gengate.products.gemini_video.product import PRODUCT, GeminiVideoProduct

__all__ = ["PRODUCT", "GeminiVideoProduct"]
