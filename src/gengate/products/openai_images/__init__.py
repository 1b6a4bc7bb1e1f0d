"""OpenAI images: ``/v1/images/generations`` and ``/v1/images/edits`` in OpenAI's own
schema, answered synchronously (the official ``openai`` SDK works unchanged but for the
base URL); upstreams: the built-in renderer and OpenAI's Images API."""

from gengate.products.openai_images.product import PRODUCT, OpenAIImagesProduct

__all__ = ["PRODUCT", "OpenAIImagesProduct"]
