"""OpenAI images' request bodies, as OpenAI's Images API reference names the fields
(platform.openai.com/docs/api-reference/images/create and /createEdit). Unknown fields are
accepted and ignored. The OpenAPI document is built from these models."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = ["ImagesAnswer", "ImagesEditForm", "ImagesFetchRequest", "ImagesGenerateRequest"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ImagesGenerateRequest(_Wire):
    """POST /v1/images/generations (JSON)"""

    prompt: str = Field(min_length=1, max_length=32000,
                        description="At most 32000 characters (1000 dall-e-2, 4000 dall-e-3)")
    model: Literal["gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini", "dall-e-2",
                   "dall-e-3"] | None = Field(
        None, description="dall-e-2 unless a GPT-image-only field is given (then gpt-image-1)")
    n: int | None = Field(None, ge=1, le=10, description="1-10 images (dall-e-3: 1)")
    size: str | None = Field(None, max_length=16, description="Per model: 1024x1024, "
                             "1536x1024, 1024x1536, auto (GPT image); 256x256, 512x512, "
                             "1024x1024 (dall-e-2); 1024x1024, 1792x1024, 1024x1792 (dall-e-3)")
    quality: str | None = Field(None, max_length=16,
                                description="auto, high, medium, low; standard, hd (dall-e-3)")
    background: Literal["transparent", "opaque", "auto"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(None, ge=0, le=100)
    moderation: Literal["low", "auto"] | None = None
    response_format: Literal["url", "b64_json"] | None = Field(
        None, description="url (dall-e default) or b64_json (GPT image default)")
    style: Literal["vivid", "natural"] | None = None
    user: str | None = Field(None, max_length=256)


class ImagesEditForm(ImagesGenerateRequest):
    """POST /v1/images/edits (multipart/form-data): the fields above, and files ``image``
    (or ``image[]``; up to 16 for GPT image, 1 for dall-e-2) and ``mask`` (optional)"""

    media_type: ClassVar[str] = "multipart/form-data"

    image: list[bytes] | None = Field(None, description="The image(s) to edit (files)")
    mask: bytes | None = Field(None, description="Transparent areas mark where to edit")


class ImagesFetchRequest(_Wire):
    """GET|POST /v1/images/fetch (query or body): a job a 504 named"""

    jobId: str = Field(max_length=64, validation_alias=AliasChoices("jobId", "job_id"))


class ImagesAnswerItem(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = Field(None, description="dall-e-3")


class ImagesAnswer(BaseModel):
    """OpenAI's ``ImagesResponse``"""

    created: int
    data: list[ImagesAnswerItem]
    background: str | None = Field(None, description="GPT image models")
    output_format: str | None = Field(None, description="GPT image models")
    quality: str | None = Field(None, description="GPT image models")
    size: str | None = Field(None, description="GPT image models")
