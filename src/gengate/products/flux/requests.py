"""Flux's request bodies, exactly as TTAPI names the fields (``reference/products.md`` 3.1).

Unknown fields are accepted and ignored. ``model`` is accepted for ``mode`` (old samples).
The OpenAPI document is built from these models.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = ["MAX_PROMPT", "BflRequest", "FluxEditsForm", "FluxFetchRequest",
           "FluxGenerateRequest"]

MAX_PROMPT = 4000
MAX_URL = 2083
#: a base64 input image of the BFL format (the request body is bounded as a whole too)
MAX_BASE64 = 14 * 1024 * 1024

Mode = Literal["flux1-dev", "flux1-pro", "flux-kontext-pro", "flux-kontext-max", "flux-2-pro",
               "flux-2-flex", "flux-2-max", "flux-2-klein-4b", "flux-2-klein-9b",
               "flux1-schnell"]
Size = Literal["1024x1024", "1024x1792", "1792x1024"]
Ratio = Literal["21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


_PROMPT = Field(min_length=1, max_length=MAX_PROMPT, description="What to draw (English works "
                "best)")
_HOOK = Field(None, max_length=MAX_URL,
              description="URL that receives the fetch body when the job ends")
_TIMEOUT = Field(None, description="Seconds, 300-1200; default 300")


class FluxGenerateRequest(_Wire):
    """POST /flux/generate"""

    prompt: str = _PROMPT
    mode: Mode = Field(validation_alias=AliasChoices("mode", "model"),
                       description="The Flux model; `model` is accepted as an alias")
    size: Size | None = Field(None, description="Pixel size (wins over aspect_ratio)")
    aspect_ratio: Ratio | None = Field(None, description="Default 1:1, made at about one "
                                       "megapixel")
    hookUrl: str | None = _HOOK
    timeout: int | None = _TIMEOUT


class FluxEditsForm(_Wire):
    """POST /flux/edits (multipart/form-data; the files go in `image`, one or more)"""

    media_type: ClassVar[str] = "multipart/form-data"

    prompt: str = _PROMPT
    mode: Mode = Field("flux-kontext-pro", validation_alias=AliasChoices("mode", "model"),
                       description="A model that edits: flux-kontext-* or flux-2-*")
    size: Size | None = None
    aspect_ratio: Ratio | None = Field(None, description="Default: the first image's shape")
    hookUrl: str | None = _HOOK
    timeout: int | None = _TIMEOUT
    image: list[bytes] | None = Field(None, description="Image files (PNG, JPEG, WebP), "
                                      "one or more")


class BflRequest(_Wire):
    """POST /bfl/v1/flux-kontext-pro and /bfl/v1/flux-kontext-max (Black Forest Labs' format)"""

    prompt: str = _PROMPT
    input_image: str | None = Field(None, max_length=MAX_BASE64,
                                    description="Base64 image or URL to edit")
    input_image_2: str | None = Field(None, max_length=MAX_BASE64)
    input_image_3: str | None = Field(None, max_length=MAX_BASE64)
    input_image_4: str | None = Field(None, max_length=MAX_BASE64)
    aspect_ratio: str | None = Field(None, max_length=16,
                                     description="W:H between 21:9 and 9:21")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    output_format: Literal["jpeg", "png"] = "png"
    prompt_upsampling: bool = False
    safety_tolerance: int = Field(2, ge=0, le=6)
    webhook_url: str | None = Field(None, min_length=1, max_length=MAX_URL,
                                    description="URL that receives the fetch body")


class FluxFetchRequest(_Wire):
    """POST|GET /flux/fetch (query, JSON body or form body)"""

    jobId: str = Field(max_length=64, validation_alias=AliasChoices("jobId", "job_id"))
