"""Suno's TTAPI routes: ``/suno/v1/music``, ``/suno/v1/lyrics``, ``/suno/v1/extend``,
``/suno/v1/concat``, ``/suno/v1/upload`` and the fetches ``/suno/v2/fetch`` (and the
deprecated ``/suno/v1/fetch``)."""

from __future__ import annotations

import email.parser
import email.policy
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from gengate.api.call import Call
from gengate.api.schemas import validation_message
from gengate.errors import BadRequest, NotFound, UnsupportedMediaType
from gengate.imaging.palette import derive_seed
from gengate.jobs import Job, new_job_id
from gengate.products.base import (
    GET_POST,
    POST,
    JobRequest,
    ProductRoute,
    Services,
    fetch_handler,
    submitted,
)
from gengate.products.suno.options import SunoOptions
from gengate.products.suno.wire import (
    ConcatRequest,
    ExtendRequest,
    LyricsRequest,
    MusicRequest,
    UploadRequest,
    parse_music_id,
)

if TYPE_CHECKING:
    from gengate.products.suno.product import SunoProduct

__all__ = ["routes"]

V1 = "/suno/v1"
#: the largest audio file /suno/v1/upload takes
MAX_UPLOAD_BYTES = 12 * 1024 * 1024


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], data: object) -> _M:
    """The request as ``model``; 400 naming the first bad field."""
    if not isinstance(data, dict):
        raise BadRequest("body: must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None


def _seed(job_id: str) -> int:
    return derive_seed("suno", job_id) % 2**31


class _Handlers:
    def __init__(self, product: SunoProduct):
        self.product = product

    async def music(self, sv: Services, call: Call) -> Any:
        req: MusicRequest = _parse(MusicRequest, call.data())
        description = (req.gpt_description_prompt or "").strip()
        lyrics = (req.prompt or "").strip()
        if not req.custom and not description:
            raise BadRequest("gpt_description_prompt: is required when custom is false")
        if req.custom and not req.instrumental and not lyrics and not req.auto_lyrics:
            raise BadRequest("prompt: the lyrics are required when custom is true and "
                             "instrumental is false (or set auto_lyrics)")
        if req.custom and req.instrumental and not lyrics and not (req.tags or "").strip():
            raise BadRequest("tags: a custom instrumental needs tags or a prompt")
        job_id = new_job_id()
        options = SunoOptions(
            mv=req.mv, custom=req.custom, instrumental=req.instrumental,
            description=description if not req.custom else "",
            title=(req.title or "").strip() if req.custom else "",
            tags=(req.tags or "").strip() if req.custom else "",
            negative_tags=(req.negative_tags or "").strip() if req.custom else "",
            style_weight=req.style_weight, weirdness_constraint=req.weirdness_constraint,
            audio_weight=req.audio_weight, auto_lyrics=req.auto_lyrics,
            vocal_gender=req.vocal_gender, persona_id=req.persona_id,
            is_storage=req.isStorage, seed=_seed(job_id))
        prompt = lyrics if req.custom else description
        job = await sv.jobs.submit(self.product, call.submit(hook_url=req.hookUrl), JobRequest(
            action="music", variant=req.mv, options=options, prompt=prompt, job_id=job_id))
        return submitted(job)

    async def lyrics(self, sv: Services, call: Call) -> Any:
        req: LyricsRequest = _parse(LyricsRequest, call.data())
        if not req.prompt.strip():
            raise BadRequest("prompt: must not be empty")
        job_id = new_job_id()
        job = await sv.jobs.submit(self.product, call.submit(hook_url=req.hookUrl), JobRequest(
            action="lyrics", variant="default", prompt=req.prompt.strip(),
            options=SunoOptions(seed=_seed(job_id)), job_id=job_id))
        return submitted(job)

    async def _song(self, sv: Services, call: Call, value: str) -> Job:
        """The caller's finished Suno job that made song ``value``."""
        parsed = parse_music_id(value.strip())
        if parsed is None:
            raise BadRequest(f"music_id: {value!r} is not a musicId from a fetch answer")
        job_id, index = parsed
        try:
            parent = await sv.jobs.parent(call.user_id, job_id)
        except NotFound:
            raise NotFound(f"music_id: song {value} not found") from None
        except BadRequest:
            raise BadRequest(f"music_id: the job of song {value} has not succeeded") from None
        songs = parent.result.get("musics") or []
        if parent.product != self.product.name or index >= len(songs):
            raise NotFound(f"music_id: song {value} not found")
        return parent

    async def extend(self, sv: Services, call: Call) -> Any:
        req: ExtendRequest = _parse(ExtendRequest, call.data())
        parent = await self._song(sv, call, req.music_id)
        song = (parent.result.get("musics") or [])[parse_music_id(req.music_id)[1]]  # type: ignore[index]
        duration = float(song.get("duration") or 0)
        if req.continue_at > duration:
            raise BadRequest(f"continue_at: must be at most the song's length "
                             f"({duration:.2f} seconds)")
        job_id = new_job_id()
        options = SunoOptions(mv=req.mv, custom=True, title=(req.title or "").strip(),
                              tags=(req.tags or "").strip(), seed=_seed(job_id),
                              music_id=req.music_id.strip(), continue_at=req.continue_at)
        job = await sv.jobs.submit(self.product, call.submit(hook_url=req.hookUrl), JobRequest(
            action="extend", variant=req.mv, options=options, prompt=(req.prompt or "").strip(),
            parent=parent, job_id=job_id))
        return submitted(job)

    async def concat(self, sv: Services, call: Call) -> Any:
        req: ConcatRequest = _parse(ConcatRequest, call.data())
        parent = await self._song(sv, call, req.music_id)
        if parent.action != "extend":
            raise BadRequest("music_id: concat joins an extension to the songs it extends; "
                             "this song is not an extension")
        job_id = new_job_id()
        options = SunoOptions(mv=str(parent.params.get("mv") or "chirp-v5"),
                              seed=_seed(job_id), music_id=req.music_id.strip())
        job = await sv.jobs.submit(self.product, call.submit(hook_url=req.hookUrl), JobRequest(
            action="concat", variant="default", options=options, prompt="", parent=parent,
            job_id=job_id))
        return submitted(job)

    async def upload(self, sv: Services, call: Call) -> Any:
        fields, files = _multipart(call)
        if "file" not in files:
            raise BadRequest("file: is required (multipart/form-data)")
        name, data = files["file"]
        if not data:
            raise BadRequest("file: is empty")
        if len(data) > MAX_UPLOAD_BYTES:
            raise BadRequest(f"file: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        hook = fields.get("hookUrl") or None
        if hook is not None and len(hook) > 2048:
            raise BadRequest("hookUrl: at most 2048 characters")
        job_id = new_job_id()
        options = SunoOptions(seed=_seed(job_id), file_name=(name or "upload")[:200])
        job = await sv.jobs.submit(self.product, call.submit(hook_url=hook), JobRequest(
            action="upload", variant="default", options=options, prompt="", inputs=[data],
            job_id=job_id))
        return submitted(job)


def _multipart(call: Call) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """The text fields and files of a ``multipart/form-data`` body (the standard
    library's MIME parser)."""
    if call.content_type() != "multipart/form-data":
        raise UnsupportedMediaType("Content-Type must be multipart/form-data with a `file` "
                                   f"field, got {call.content_type() or 'none'}")
    head = f"Content-Type: {call.header(b'content-type')}\r\nMIME-Version: 1.0\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        head.encode("latin-1") + call.body)
    if not message.is_multipart():
        raise BadRequest("body: not a multipart/form-data body")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename is not None or name == "file":
            files[name] = (str(filename or ""), payload)
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, files


def routes(product: SunoProduct) -> list[ProductRoute]:
    h = _Handlers(product)
    fetch = fetch_handler(product)
    return [
        ProductRoute(f"{V1}/music", POST, h.music, MusicRequest,
                     "Make two songs (inspiration or custom mode), billed as one request"),
        ProductRoute(f"{V1}/lyrics", POST, h.lyrics, LyricsRequest, "Write lyrics"),
        ProductRoute(f"{V1}/extend", POST, h.extend, ExtendRequest,
                     "Continue a song from `continue_at` seconds (two takes)"),
        ProductRoute(f"{V1}/concat", POST, h.concat, ConcatRequest,
                     "Join an extension and the songs it extends into one song (free)"),
        ProductRoute(f"{V1}/upload", POST, h.upload, UploadRequest,
                     "Upload an audio file as a song to extend (multipart/form-data)",
                     images=True),
        ProductRoute("/suno/v2/fetch", GET_POST, fetch, None, "Fetch a Suno job (free)"),
        ProductRoute(f"{V1}/fetch", GET_POST, fetch, None,
                     "Fetch a Suno job (deprecated: use /suno/v2/fetch)"),
    ]

