"""GPT image: ``/openai/gpt/generations`` and ``/fetch`` (and the legacy 4o image paths);
upstreams: the built-in renderer, a TTAPI-compatible account, OpenAI's Images API."""

from gengate.products.gpt_image.product import PRODUCT, GptImageProduct

__all__ = ["PRODUCT", "GptImageProduct"]
