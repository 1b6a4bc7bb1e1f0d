"""The OpenAI images product object: prices per image, OpenAI's answer and error format,
the fetch body, renderer and adapter (OpenAI's Images API)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from gengate.errors import BadRequest, GengateError, UpstreamError
from gengate.jobs import Job, JobStatus, Mode
from gengate.products.base import (
    GET_POST,
    POST,
    AdapterContext,
    AdapterFactory,
    LocalRenderer,
    Product,
    ProductRoute,
    ResultIO,
    Services,
    fetch_handler,
)
from gengate.products.openai_images.options import GPT_MODELS, MODELS, OpenAIImagesOptions
from gengate.products.openai_images.render import OpenAIImagesRenderer
from gengate.products.openai_images.requests import (
    ImagesAnswer,
    ImagesEditForm,
    ImagesFetchRequest,
    ImagesGenerateRequest,
)
from gengate.products.openai_images.routes import OpenAIImagesRoutes
from gengate.products.openai_images.upstream import build_request, read_answer
from gengate.providers.base import ProviderError, ProviderUpdate
from gengate.providers.openai_images import OpenAIImagesProvider

__all__ = ["PRODUCT", "OpenAIImagesProduct", "openai_error"]

#: quota per image by model
PRICES = {"gpt-image-1": 4, "gpt-image-1.5": 4, "gpt-image-1-mini": 1, "dall-e-2": 2,
          "dall-e-3": 4}
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
          402: "insufficient_quota", 404: "invalid_request_error",
          409: "invalid_request_error", 413: "invalid_request_error",
          415: "invalid_request_error", 429: "requests", 499: "requests", 504: "timeout"}
_CODES = {401: "invalid_api_key", 402: "insufficient_quota", 499: "too_many_jobs",
          504: "timeout"}


def openai_error(status: int, message: str, data: Any) -> dict[str, Any]:
    """OpenAI's error object; the job's id as ``job_id`` where there is one (a 504, a
    failed generation)."""
    error: dict[str, Any] = {
        "message": message, "param": None,
        "type": _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error"),
        "code": _CODES.get(status)}
    if isinstance(data, dict) and data.get("jobId"):
        error["job_id"] = data["jobId"]
    if isinstance(data, dict) and data.get("code"):
        error["code"] = data["code"]
    if status == 400 and ":" in message and message.split(":", 1)[0].isidentifier():
        error["param"] = message.split(":", 1)[0]
    return {"error": error}


class OpenAIImagesProduct(Product[OpenAIImagesOptions]):
    name = "openai_images"
    title = "OpenAI images"
    options_type = OpenAIImagesOptions
    default_prices: ClassVar[Mapping[str, float]] = {
        f"{action}:{model}": price for model, price in PRICES.items()
        for action in ("generations", "edits")}
    lanes = (Mode.FAST,)
    fetch_path = "/v1/images/fetch"

    def routes(self) -> Sequence[ProductRoute]:
        handlers = OpenAIImagesRoutes(self)
        return (
            ProductRoute("/v1/images/generations", POST, handlers.generations,
                         ImagesGenerateRequest, "Create images (OpenAI's Images API; "
                         "synchronous, 504 with the job_id past GENGATE_SYNC_TIMEOUT)",
                         sync=True, error_shape=openai_error, answer_model=ImagesAnswer),
            ProductRoute("/v1/images/edits", POST, handlers.edits, ImagesEditForm,
                         "Edit images (OpenAI's Images API, multipart/form-data; "
                         "synchronous, 504 with the job_id past GENGATE_SYNC_TIMEOUT)",
                         sync=True, error_shape=openai_error, answer_model=ImagesAnswer,
                         images=True),
            ProductRoute("/v1/images/fetch", GET_POST, fetch_handler(self), ImagesFetchRequest,
                         "Fetch an OpenAI images job a 504 named (free; gengate extension)",
                         error_shape=openai_error),
        )

    def response(self, job: Job, inline: Sequence[bytes] | None = None) -> dict[str, Any]:
        """OpenAI's ``ImagesResponse`` of a SUCCESS job: each image by URL, or base64
        when ``inline`` holds their bytes."""
        options: OpenAIImagesOptions = self.options(job)
        items: list[dict[str, Any]] = []
        for index, stored in enumerate(job.result.get("outputs") or []):
            item: dict[str, Any] = ({"b64_json": base64.b64encode(inline[index]).decode()}
                                    if inline is not None else {"url": stored["url"]})
            if options.model == "dall-e-3":
                item["revised_prompt"] = job.prompt
            items.append(item)
        body: dict[str, Any] = {"created": int(job.finished_at or job.created_at),
                                "data": items}
        if options.model in GPT_MODELS:
            body.update(background=options.background or "opaque",
                        output_format=options.output_format,
                        quality=options.quality if options.quality not in (None, "auto")
                        else "high", size=f"{options.width}x{options.height}")
        return body

    async def answer(self, services: Services, job: Job) -> dict[str, Any]:
        """The synchronous answer of an ended job, or its failure as an OpenAI error (the
        job was refunded): 400 for a refused prompt or parameter, 500 otherwise."""
        if job.status is not JobStatus.SUCCESS:
            raise _failure(job)
        options: OpenAIImagesOptions = self.options(job)
        inline = None
        if options.response_format == "b64_json":
            store = job.result.get("store")
            inline = [await services.jobs.stored(key, store) for key in job.result["files"]]
        return self.response(job, inline)

    def fetch_body(self, job: Job) -> dict[str, Any]:
        """The fetch answer and webhook body: ``{"status", "message", "jobId", "data"}``
        with ``data`` OpenAI's ``ImagesResponse`` (images by URL) once it succeeded."""
        if job.status is JobStatus.SUCCESS:
            message: str | None = "success"
            data: dict[str, Any] | None = self.response(job)
        else:
            message = job.message if job.status is JobStatus.FAILED else None
            data = None
        return {"status": self.statuses.wire(job.status), "message": message, "jobId": job.id,
                "data": data}

    async def store_result(self, job: Job, update: ProviderUpdate,
                           io: ResultIO) -> dict[str, Any]:
        """Every image stored: ``outputs`` lists their URLs, ``files`` their storage keys
        in ``store`` (read back for ``b64_json`` answers; what retention deletes)."""
        if not update.files:
            raise ProviderError("[Bad response] the upstream returned no image")
        outputs, keys = [], []
        for index, item in enumerate(update.files):
            data = await io.load(item)
            suffix = "" if index == 0 else f"-{index}"
            keys.append(io.key(job, item.content_type, suffix))
            outputs.append({"url": await io.save(job, data, item.content_type, suffix)})
        return {"outputs": outputs, "files": keys, "store": io.store_name}

    def renderer(self) -> LocalRenderer:
        return OpenAIImagesRenderer()

    def adapters(self) -> Mapping[str, AdapterFactory]:
        return {"openai": openai_adapter}


def _failure(job: Job) -> GengateError:
    message = job.message or "the generation failed"
    data = {"jobId": job.id}
    if message.startswith(("[Content Moderated]", "[Request Moderated]")):
        return BadRequest(message, data={**data, "code": "moderation_blocked"})
    if message.startswith("[Invalid parameter]"):
        return BadRequest(message, data=data)
    return UpstreamError(message, data=data)


def openai_adapter(ctx: AdapterContext) -> OpenAIImagesProvider:
    """An OpenAI account: its Images API, asked exactly what the client asked."""
    return OpenAIImagesProvider(ctx.base_url or "https://api.openai.com",
                                api_key=ctx.secrets.get("apiKey", ""), http=ctx.http,
                                poll_interval=min(ctx.poll_interval, 0.2),
                                build=build_request, read=read_answer)


assert set(PRICES) == set(MODELS)
PRODUCT = OpenAIImagesProduct()
