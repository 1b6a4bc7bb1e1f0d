"""The Suno product: two songs per request (billed as one), lyrics, extend, concat and
upload, fetched with ``ON_QUEUE | SUCCESS | FAILED`` and ``progress`` as ``"100%"``.

Suno has no official public API: gengate relays Suno jobs to TTAPI-compatible accounts
(provider kind ``ttapi``), and the built-in ``local`` account renders real songs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from gengate.jobs import Job, Mode
from gengate.products.base import (
    THREE_STATUSES,
    AdapterContext,
    AdapterFactory,
    LocalRenderer,
    Product,
    ProductRoute,
    ResultIO,
    StatusSet,
    TaskIO,
)
from gengate.products.suno.options import SunoOptions

if TYPE_CHECKING:
    from gengate.providers.base import Provider, ProviderTask, ProviderUpdate

__all__ = ["PRICES", "PRODUCT", "SunoProduct"]

#: ``action:model`` -> quota. TTAPI's example quota for a chirp-v5 request is 6; concat
#: is free; the others are gengate's defaults (``GENGATE_PRICES`` overrides any)
PRICES: dict[str, float] = {
    "music:*": 6,
    "extend:*": 6,
    "concat:*": 0,
    "upload:*": 1,
    "lyrics:*": 1,
}
#: the four files of one song, by the fetch field that names them
_FIELDS = {"audio": "audioUrl", "image": "imageUrl", "imageLarge": "imageLargeUrl",
           "video": "videoUrl"}


def _ttapi(ctx: AdapterContext) -> Provider:
    from gengate.products.suno.providers import ttapi
    from gengate.providers.ttapi_relay import TtapiRelayProvider

    return TtapiRelayProvider(ctx.base_url, api_key=ctx.secrets.get("apiKey", ""),
                              http=ctx.http, build=ttapi.build, fetch_path=ttapi.FETCH_PATH,
                              read=ttapi.read, poll_interval=ctx.poll_interval,
                              timeout=ctx.timeout)


class SunoProduct(Product[SunoOptions]):
    name = "suno"
    title = "Suno"
    options_type = SunoOptions
    statuses: ClassVar[StatusSet] = THREE_STATUSES
    default_prices = PRICES
    lanes = (Mode.FAST,)
    #: a song takes minutes upstream; up to 30 on request
    timeouts = {Mode.FAST: (600, 1800)}
    fetch_path = "/suno/v2/fetch"

    def routes(self) -> Sequence[ProductRoute]:
        from gengate.products.suno.routes import routes

        return routes(self)

    def fetch_body(self, job: Job) -> dict[str, Any]:
        from gengate.products.suno.wire import fetch_body

        return fetch_body(job)

    def renderer(self) -> LocalRenderer:
        from gengate.products.suno.renderer import SunoRenderer

        return SunoRenderer()

    def adapters(self) -> Mapping[str, AdapterFactory]:
        return {"ttapi": _ttapi}

    async def task(self, job: Job, io: TaskIO, *, with_parent_image: bool) -> ProviderTask:
        from gengate.providers.base import ProviderTask

        options = self.options(job)
        params: dict[str, Any] = {}
        images = list(await io.inputs(job))
        if job.action in ("extend", "concat"):
            parent, song = await _song_of(io, options.music_id)
            params = {"music_id": song.get("upstreamId") or options.music_id,
                      "parent_tags": song.get("tags", ""),
                      "parent_title": song.get("title", ""),
                      "style_seed": song.get("seed"), "continue_at": options.continue_at,
                      "title": song.get("title", ""), "tags": song.get("tags", "")}
            if with_parent_image:
                if job.action == "extend":
                    images = [await io.stored(str(song["key"]))]
                else:
                    images, params["cuts"] = await _chain(io, parent, song)
        return ProviderTask(
            job_id=job.id, action=job.action, prompt=job.prompt,
            mode=job.slot_mode or job.mode.value, seed=options.seed, product=self.name,
            options=options.to_json(), images=tuple(images), params=params,
            parent_upstream_id=(await _upstream_id(io, job)),
        )

    async def store_result(self, job: Job, update: ProviderUpdate,
                           io: ResultIO) -> dict[str, Any]:
        from gengate.products.suno.wire import music_id
        from gengate.providers.base import ProviderError

        if job.action == "lyrics":
            text = update.data.get("text")
            if not isinstance(text, str) or not text:
                raise ProviderError("[Bad response] the upstream returned no lyrics")
            return {"lyrics": {"title": str(update.data.get("title") or ""), "text": text}}
        songs: dict[int, dict[str, Any]] = {}
        for item in update.files:
            index, part = _role(item.role)
            song = songs.setdefault(index, {"sources": {}})
            data = await io.load(item)
            suffix = f"-{index}" if part == "audio" else f"-{index}-{item.role.split('-', 1)[1]}"
            url = await io.save(job, data, item.content_type, suffix)
            song[_FIELDS[part]] = url
            song["sources"][_FIELDS[part]] = item.url or url
            if part == "audio":
                meta = dict(item.meta)
                song.update({"key": io.key(job, item.content_type, suffix),
                             "duration": float(meta.get("duration") or 0),
                             "title": str(meta.get("title") or ""),
                             "tags": str(meta.get("tags") or ""),
                             "prompt": str(meta.get("prompt") or ""),
                             "seed": meta.get("seed"), "upstreamId": meta.get("musicId"),
                             "bpm": meta.get("bpm"), "key_name": meta.get("key")})
        musics: list[dict[str, Any]] = []
        for index in sorted(songs):
            song = songs[index]
            if "audioUrl" not in song:
                raise ProviderError("[Bad response] the upstream returned a song without audio")
            musics.append({"musicId": music_id(job.id, len(musics)), **song})
        if not musics:
            raise ProviderError("[Bad response] the upstream returned no song")
        return {"musics": musics}


def _role(role: str) -> tuple[int, str]:
    """``song1-image-large`` -> (1, "imageLarge")."""
    head, _, rest = role.partition("-")
    index = int(head[4:]) if head.startswith("song") and head[4:].isdigit() else 0
    part = {"": "audio", "image": "image", "image-large": "imageLarge",
            "video": "video"}.get(rest, "audio")
    return index, part


async def _song_of(io: TaskIO, value: str | None) -> tuple[Job, dict[str, Any]]:
    from gengate.products.suno.wire import parse_music_id
    from gengate.providers.base import ProviderError

    parsed = parse_music_id(value or "")
    job = await io.job(parsed[0]) if parsed else None
    songs = (job.result.get("musics") or []) if job is not None else []
    if job is None or parsed is None or parsed[1] >= len(songs):
        raise ProviderError("[Bad response] the song to continue is gone")
    return job, songs[parsed[1]]


async def _upstream_id(io: TaskIO, job: Job) -> str | None:
    if not job.parent_id:
        return None
    parent = await io.job(job.parent_id)
    return parent.upstream_id if parent is not None else None


async def _chain(io: TaskIO, job: Job, song: dict[str, Any]
                 ) -> tuple[list[bytes], list[float]]:
    """The audio of an extension and of each song it extends, oldest first, and where
    each next part continued."""
    parts = [await io.stored(str(song["key"]))]
    cuts: list[float] = []
    while job.action == "extend":
        options = SunoOptions.from_json(job.params)
        job, song = await _song_of(io, options.music_id)
        parts.insert(0, await io.stored(str(song["key"])))
        cuts.insert(0, float(options.continue_at or 0))
        if len(parts) > 50:
            break
    return parts, cuts


PRODUCT = SunoProduct()
