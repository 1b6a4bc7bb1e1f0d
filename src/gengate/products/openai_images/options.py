"""An OpenAI images job's options, and the request rules of OpenAI's Images API reference
(platform.openai.com/docs/api-reference/images): models, sizes per model, ``n``,
``quality``, ``background``, ``output_format`` and ``response_format``."""

from __future__ import annotations

from dataclasses import dataclass

from gengate.errors import BadRequest
from gengate.products.base import Options

__all__ = ["GPT_MODELS", "MODELS", "OpenAIImagesOptions", "checked"]

GPT_MODELS = ("gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini")
MODELS = (*GPT_MODELS, "dall-e-2", "dall-e-3")
_GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
SIZES = {**dict.fromkeys(GPT_MODELS, _GPT_SIZES),
         "dall-e-2": ("256x256", "512x512", "1024x1024"),
         "dall-e-3": ("1024x1024", "1792x1024", "1024x1792")}
QUALITIES = {**dict.fromkeys(GPT_MODELS, ("auto", "high", "medium", "low")),
             "dall-e-2": ("standard",), "dall-e-3": ("standard", "hd")}
PROMPT_LIMITS = {"dall-e-2": 1000, "dall-e-3": 4000}
#: fields only the GPT image models take; giving one picks gpt-image-1 when no model is named
GPT_ONLY = ("background", "output_format", "output_compression", "moderation")


@dataclass(frozen=True, slots=True)
class OpenAIImagesOptions(Options):
    """An OpenAI images job's own options (stored in the job's params)."""

    model: str = "dall-e-2"
    n: int = 1
    size: str = "1024x1024"
    width: int = 1024
    height: int = 1024
    quality: str | None = None
    background: str | None = None
    output_format: str = "png"
    output_compression: int | None = None
    response_format: str = "url"
    style: str | None = None
    moderation: str | None = None
    #: the last input file is the edit's mask
    mask: bool = False


def checked(*, model: str | None, prompt: str, n: int | None, size: str | None,
            quality: str | None, background: str | None, output_format: str | None,
            output_compression: int | None, response_format: str | None, style: str | None,
            moderation: str | None, first_image: tuple[int, int] | None = None
            ) -> OpenAIImagesOptions:
    """The options of a request, or 400 naming the field as OpenAI's reference rules it."""
    if model is None:
        gpt_field = any(v is not None for v in (background, output_format, output_compression,
                                                moderation)) or quality in ("low", "medium",
                                                                            "high", "auto")
        model = "gpt-image-1" if gpt_field else "dall-e-2"
    if model not in MODELS:
        raise BadRequest(f"model: must be one of {', '.join(MODELS)}")
    gpt = model in GPT_MODELS
    limit = PROMPT_LIMITS.get(model, 32000)
    if len(prompt) > limit:
        raise BadRequest(f"prompt: at most {limit} characters for {model}")
    count = 1 if n is None else n
    if not 1 <= count <= (1 if model == "dall-e-3" else 10):
        raise BadRequest(f"n: must be 1 for dall-e-3 and 1 to 10 otherwise, got {count}")
    size = size or ("auto" if gpt else "1024x1024")
    if size not in SIZES[model]:
        raise BadRequest(f"size: must be one of {', '.join(SIZES[model])} for {model}")
    if size == "auto":
        width, height = _auto(first_image)
    else:
        w, _, h = size.partition("x")
        width, height = int(w), int(h)
    if quality is not None and quality not in QUALITIES[model]:
        raise BadRequest(f"quality: must be one of {', '.join(QUALITIES[model])} for {model}")
    if not gpt:
        for name, value in (("background", background), ("output_format", output_format),
                            ("output_compression", output_compression),
                            ("moderation", moderation)):
            if value is not None:
                raise BadRequest(f"{name}: only the GPT image models take it, not {model}")
    if style is not None and model != "dall-e-3":
        raise BadRequest(f"style: only dall-e-3 takes it, not {model}")
    fmt = output_format or "png"
    if background == "transparent" and fmt == "jpeg":
        raise BadRequest("background: transparent needs output_format png or webp")
    # the GPT image models always answer base64; gengate also serves them by URL
    answer = response_format or ("b64_json" if gpt else "url")
    return OpenAIImagesOptions(model=model, n=count, size=size, width=width, height=height,
                               quality=quality, background=background, output_format=fmt,
                               output_compression=output_compression, response_format=answer,
                               style=style, moderation=moderation)


def _auto(first_image: tuple[int, int] | None) -> tuple[int, int]:
    """``auto``: square, or the first input image's landscape or portrait shape."""
    if first_image is None:
        return 1024, 1024
    width, height = first_image
    if width > height * 1.2:
        return 1536, 1024
    if height > width * 1.2:
        return 1024, 1536
    return 1024, 1024
