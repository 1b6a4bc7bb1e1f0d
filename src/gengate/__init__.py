"""gengate: a self-hosted gateway for asynchronous AI generation, speaking TTAPI's protocol."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
