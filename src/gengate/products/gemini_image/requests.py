"""Gemini image's request bodies, as TTAPI names the fields (``reference/products.md``
3.5). Unknown fields are accepted and ignored; booleans also come as ``"true"`` /
``"false"`` (the CN page's example sends ``sync_return`` as a string). The OpenAPI document
is built from these models."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = ["GeminiFetchRequest", "GeminiImageAnswer", "GeminiImageRequest", "MAX_PROMPT",
           "MAX_REFER_IMAGES"]

MAX_PROMPT = 32000
#: Google's Gemini 3 image models take up to 14 reference images
MAX_REFER_IMAGES = 14

Model = Literal["gemini-2.5-flash-image-preview", "gemini-2.5-flash-image",
                "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class GeminiImageRequest(_Wire):
    """POST /gemini/image/generate"""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT, description="What to draw")
    model: Model = Field("gemini-3-pro-image-preview",
                         validation_alias=AliasChoices("model", "mode"),
                         description="Default gemini-3-pro-image-preview (old pages: `mode`)")
    refer_images: list[str] | None = Field(
        None, max_length=MAX_REFER_IMAGES,
        description="Reference images: http(s) URLs or base64 (bare or data: URLs)")
    aspect_ratio: str | None = Field(
        None, max_length=8, description="1:1 (default), 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, "
        "16:9, 21:9; 1:4, 4:1, 1:8, 8:1 on gemini-3.1-flash-image-preview; gemini-3 only")
    image_size: str | None = Field(None, max_length=4,
                                   description="1K (default), 2K or 4K; gemini-3 only past 1K")
    google_search: bool = False
    image_search: bool = False
    thinking_level: Literal["Minimal", "High", "minimal", "high"] | None = None
    sync_return: bool = Field(True, description="false: answer the jobId at once; fetch it "
                              "at /gemini/image/fetch or receive it at hook_url")
    hook_url: str | None = Field(None, max_length=2083,
                                 validation_alias=AliasChoices("hook_url", "hookUrl"),
                                 description="URL that receives the fetch body when the job ends")
    timeout: int | None = Field(None, description="Job timeout in seconds, 300-1200")


class GeminiFetchRequest(_Wire):
    """GET|POST /gemini/image/fetch (query or body)"""

    jobId: str = Field(max_length=64, validation_alias=AliasChoices("jobId", "job_id"))


class GeminiImageData(BaseModel):
    prompt: str
    refer_images: list[str] = Field(description="The reference URLs given (base64 ones are "
                                    "not echoed)")
    image_url: str
    quota: float = Field(description="A number here, as TTAPI's synchronous answer shows")


class GeminiImageAnswer(BaseModel):
    """The synchronous answer of POST /gemini/image/generate (``sync_return=false``: the
    submit envelope with the jobId instead)"""

    status: Literal["SUCCESS"]
    message: str
    jobId: str = Field(description="gengate's job id (also fetchable)")
    data: GeminiImageData
