"""Suno: songs from a description or from lyrics (see :mod:`.product`)."""

from gengate.products.suno.product import PRODUCT, SunoProduct

__all__ = ["PRODUCT", "SunoProduct"]
