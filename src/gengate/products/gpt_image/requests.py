"""GPT image's request bodies, as TTAPI names the fields (``reference/products.md`` 3.4).
Unknown fields are accepted and ignored. The OpenAPI document is built from these models."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = ["FourOImageRequest", "GptFetchRequest", "GptGenerationsRequest", "MAX_PROMPT",
           "MAX_REFER_IMAGES"]

#: OpenAI's limit for GPT image prompts
MAX_PROMPT = 32000
MAX_REFER_IMAGES = 16
MAX_URL = 2083

Model = Literal["gpt-4o-image", "gpt-image-1", "gpt-image-1.5", "gpt-image-2",
                "gpt-image-2-plus"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


_PROMPT = Field(min_length=1, max_length=MAX_PROMPT,
                description='What to draw; "draw a ..." or "generate a ..." works best')
_REFER = Field(None, max_length=MAX_REFER_IMAGES,
               description="Reference image URLs (at most 16)")
_HOOK = Field(None, max_length=MAX_URL,
              description="URL that receives the fetch body when the job ends")
_TIMEOUT = Field(None, description="Seconds, 300-1200; default 300")


class GptGenerationsRequest(_Wire):
    """POST /openai/gpt/generations"""

    prompt: str = _PROMPT
    model: Model = "gpt-image-2"
    referImages: list[str] | None = _REFER
    aspect_ratio: str | None = Field(None, max_length=16,
                                     description="1:1, 3:4, 4:3, 16:9 or 9:16; gpt-image-2 only")
    size: str | None = Field(None, max_length=32, description="WIDTHxHEIGHT; gpt-image-2-plus "
                             "only; corrected into bounds, never refused")
    hookUrl: str | None = _HOOK
    timeout: int | None = _TIMEOUT


class FourOImageRequest(_Wire):
    """POST /openai/4o-image/generations (legacy; the gpt-4o-image model)"""

    prompt: str = _PROMPT
    referImages: list[str] | None = _REFER
    hookUrl: str | None = _HOOK
    timeout: int | None = _TIMEOUT


class GptFetchRequest(_Wire):
    """GET|POST /openai/gpt/fetch and /openai/4o-image/fetch (query or body)"""

    jobId: str = Field(max_length=64, validation_alias=AliasChoices("jobId", "job_id"))
