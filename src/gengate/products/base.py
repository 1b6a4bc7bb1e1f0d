"""The product contract: everything that differs between products, declared in one place.

A product (Midjourney, Flux, GPT image, ...) is a package under ``gengate.products`` whose
``PRODUCT`` object is a :class:`Product`. The engine (admission, ledger, queue, leases,
deadlines, webhook outbox, result storage, status, accounts, hosting, cancel) knows
products only through this class:

- **routes** (:class:`ProductRoute`): paths, methods, the request model that documents
  them, and a handler that normalizes the request (field-name variants included),
  validates it with the product's messages and hands the engine a :class:`JobRequest`;
- **prices**: default entries of the ``product:action:variant`` price table;
- **statuses** (:class:`StatusSet`): how the product spells the engine's four statuses;
- **fetch_body**: the fetch answer, which is also the webhook body;
- **task** / **store_result**: the job turned into an upstream task, and an upstream's
  answer turned into stored files and the job's ``result``;
- **renderer**: the built-in local renderer (the embedded default upstream);
- **adapters**: factories of upstream adapters, by account provider kind.

A job's product options are a typed :class:`Options` object, stored flat in the job's
``params`` beside the engine's own keys (:class:`EngineOptions`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from gengate.errors import BadRequest
from gengate.jobs import TIMEOUTS, EngineOptions, Job, JobStatus, Mode, Options

if TYPE_CHECKING:
    import httpx

    from gengate.api.call import Call
    from gengate.config import Settings
    from gengate.providers.base import Provider, ProviderTask, ProviderUpdate
    from gengate.store import User

_T = TypeVar("_T")

__all__ = [
    "THREE_STATUSES",
    "FOUR_STATUSES",
    "RUNNING_STATUSES",
    "AdapterContext",
    "AdapterFactory",
    "BackgroundRenderer",
    "Engine",
    "EngineOptions",
    "Handler",
    "JobRequest",
    "LocalRenderer",
    "Options",
    "Product",
    "ProductRoute",
    "ResultFile",
    "ResultIO",
    "fetch_handler",
    "Services",
    "StatusSet",
    "Submit",
    "TaskIO",
    "submitted",
]


# -- what a submit carries --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Submit:
    """What every submit carries besides its own fields (built by ``Call.submit``)."""

    user_id: int
    timeout: int | None = None
    hook_url: str | None = None
    get_u_images: bool = False
    idempotency_key: str | None = None
    hook_progress: bool = False
    #: a fingerprint of the request an idempotency key was first used with
    request_hash: str | None = None
    #: through /hold: run on the user's own accounts, at the hosting prices
    hosted: bool = False
    #: a fast job may take a relax slot (at relax's price) when no fast slot is free
    relax_fallback: bool = False
    #: the API key that submits it (its spend caps apply; usage is recorded per key)
    key_id: int | None = None
    #: a synchronous route waits on the job (its end is announced to every node)
    sync: bool = False


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job for the engine to admit, as a product's submit handler describes it."""

    #: the price key's action part ("imagine", "upsample1", "generate", "edits", ...)
    action: str
    #: the price key's last part: a speed mode (Midjourney) or a model (Flux, GPT image)
    variant: str
    #: the product's typed options, stored with the job and handed to the upstream
    options: Options
    prompt: str = ""
    #: input files (images to edit, masks), stored with the job
    inputs: Sequence[bytes] = ()
    #: the account slot the job takes (accounts count slots per mode)
    lane: Mode = Mode.FAST
    #: a follow-up of this job: runs on the account that made it
    parent: Job | None = None
    #: the job's id when the product needs it before admission (to derive a seed)
    job_id: str | None = None
    #: how many of the priced unit the job makes (OpenAI's ``n`` images): its price is
    #: this many times the price entry
    count: int = 1


# -- statuses ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StatusSet:
    """How a product spells the engine's four statuses on its wire (not normalised:
    GPT image shows a queued job as ``ON_QUEUE``, Gemini video a live one as ``RUNNING``)."""

    pending: str = "PENDING_QUEUE"
    running: str = "ON_QUEUE"
    success: str = "SUCCESS"
    failed: str = "FAILED"

    def wire(self, status: JobStatus) -> str:
        if status is JobStatus.PENDING_QUEUE:
            return self.pending
        if status is JobStatus.ON_QUEUE:
            return self.running
        return self.success if status is JobStatus.SUCCESS else self.failed

    def names(self) -> list[str]:
        """The distinct wire names, in lifecycle order (for documents and filters)."""
        return list(dict.fromkeys([self.pending, self.running, self.success, self.failed]))

    def engine(self, name: str) -> list[JobStatus]:
        """The engine statuses a wire name stands for (a list filter)."""
        return [s for s in JobStatus if self.wire(s) == name]


#: Flux, Sora, Midjourney: ``PENDING_QUEUE | ON_QUEUE | SUCCESS | FAILED``
FOUR_STATUSES = StatusSet()
#: GPT image, 4o image, Suno: ``ON_QUEUE | SUCCESS | FAILED``
THREE_STATUSES = StatusSet(pending="ON_QUEUE")
#: Gemini video: ``RUNNING | SUCCESS | FAILED``
RUNNING_STATUSES = StatusSet(pending="RUNNING", running="RUNNING")


# -- results ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResultFile:
    """One file of an upstream's result (an image, a video and its thumbnail, a song)."""

    #: the product's name for it ("image", "video", "thumbnail", "song-0", ...)
    role: str
    data: bytes | None = None  #: the bytes, or
    url: str | None = None  #: where to download them (remote upstreams)
    content_type: str = "image/png"
    #: extra facts the upstream told about this file (duration, title, ...)
    meta: Mapping[str, Any] = field(default_factory=dict)


class ResultIO(Protocol):
    """What the engine lends a product to store a result."""

    async def load(self, file: ResultFile) -> bytes:
        """The file's bytes: as given, or downloaded (bounded, retried, guarded for a
        hosted account's upstream)."""

    def key(self, job: Job, content_type: str, suffix: str = "") -> str:
        """The storage key :meth:`save` uses: ``<product>/<day>/<jobId><suffix>.<ext>``."""

    @property
    def store_name(self) -> str:
        """The store that :meth:`save` writes to (kept in the result as ``store``)."""

    async def save(self, job: Job, data: bytes, content_type: str, suffix: str = "") -> str:
        """Store ``data`` under :meth:`key`; its public URL."""


class TaskIO(Protocol):
    """What the engine lends a product to build an upstream task."""

    async def inputs(self, job: Job) -> list[bytes]:
        """The job's own stored input files."""

    async def job(self, job_id: str) -> Job | None:
        """Another job (a parent)."""

    async def stored(self, key: str) -> bytes:
        """A stored result file by key."""

    async def parent_file(self, result: dict[str, Any]) -> bytes:
        """The stored file of an earlier job's ``result`` (its ``key``, in its ``store``);
        a ProviderError when its retention deleted it."""

    async def download(self, url: str, field_name: str) -> bytes:
        """A user-given URL, checked against the outbound guard ([Invalid link!] if not)."""


class LocalRenderer(Protocol):
    """A product's built-in renderer: real files made on this machine.

    The engine's ``local`` upstream keeps the task on disk, paces it by
    ``GENGATE_LOCAL_DELAY`` with progress steps, applies the fail and hang markers, and
    calls :meth:`render` (in a thread) when the task is due.
    """

    def render(self, task: ProviderTask, scale: float) -> ProviderUpdate:
        """The finished task's update (SUCCESS with files, or FAILED with a message)."""


@runtime_checkable
class BackgroundRenderer(LocalRenderer, Protocol):
    """A renderer whose work runs outside the API process (a render process): the local
    upstream starts it with :meth:`begin` and answers its polls "running" until the
    future is done, so a long render holds no thread and several run at once."""

    def begin(self, task: ProviderTask, scale: float) -> Future[ProviderUpdate]:
        """Start rendering; the future holds the update :meth:`render` would return."""


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What an upstream adapter is built from: one account's address, opened secrets and
    options, the shared HTTP client, the account's poll interval and the request timeout."""

    base_url: str
    secrets: Mapping[str, str]
    options: Mapping[str, Any]
    http: httpx.AsyncClient
    poll_interval: float
    #: seconds one request to the upstream may take (``GENGATE_UPSTREAM_TIMEOUT``)
    timeout: float = 30.0
    #: where the upstream may call when one of the account's tasks changes
    #: (:mod:`gengate.upstream_notify`; None: it is polled only)
    notify_url: str | None = None


AdapterFactory = Callable[[AdapterContext], "Provider"]


# -- routes -----------------------------------------------------------------------------
class Engine(Protocol):
    """The job service as a product's handlers use it (:class:`gengate.service.JobService`)."""

    async def submit(self, product: Product[Any], sub: Submit, request: JobRequest) -> Job:
        """Price the job (``product:action:variant``), check the hookUrl and capacity,
        and admit it atomically (max_queue 499, balance 402, freeze, insert)."""

    async def parent(self, user_id: int, job_id: str) -> Job:
        """The caller's SUCCESS job ``job_id`` (404 / 400 otherwise)."""

    async def fetch_body(self, user_id: int, job_id: str, product: str | None = None) -> bytes:
        """The job's fetch body, serialized (404 unless the caller's job of ``product``)."""

    async def wait(self, user_id: int, job_id: str, timeout: float) -> Job:
        """The job once it ended; :class:`~gengate.errors.GatewayTimeout` (504, the jobId
        in ``data``) past ``timeout`` seconds, the job going on (synchronous routes). Woken
        in-process, and across nodes by PostgreSQL NOTIFY; never holds a connection."""

    async def check_url(self, url: str, field_name: str) -> None:
        """400 naming ``field_name`` unless gengate may fetch ``url`` (reference images)."""

    async def stored(self, key: str, store: str | None = None) -> bytes:
        """A stored result file's bytes, by its :meth:`ResultIO.key` and the ``store`` the
        result names (answers that carry images inline, e.g. OpenAI's ``b64_json``)."""

    @property
    def sync_timeout(self) -> float:
        """Seconds a synchronous route waits (``GENGATE_SYNC_TIMEOUT``)."""
    async def precheck(self, product: Product[Any], sub: Submit, action: str, variant: str,
                       *, parent: Job | None = None) -> None:
        """499 or 402 now, before expensive work on a request's inputs (decoding images),
        if the job could not be admitted as things stand; ``submit`` stays the authority."""

    async def decode(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` (decoding input images) in a thread, a few at a time."""

    async def list_jobs(self, user_id: int, *, page: int, limit: int,
                        status: str | list[str] | None, ascending: bool,
                        product: str | None = None) -> list[Job]:
        """A user's jobs, newest (or oldest) first, of one product when given."""

    async def user(self, user_id: int) -> User:
        """The caller's account (balance, frozen quota, max_queue, in-flight jobs)."""

    async def illegal_count(self, user_id: int) -> int:
        """The caller's failed-for-a-banned-prompt count today."""


class Services(Protocol):
    """What a route handler may use: services, never the store (the runtime passes
    itself)."""

    @property
    def jobs(self) -> Engine: ...

    @property
    def status(self) -> Any: ...


Handler = Callable[["Services", "Call"], Awaitable[Any]]

#: method sets for :class:`ProductRoute`
GET, POST = frozenset({"GET"}), frozenset({"POST"})
GET_POST = frozenset({"GET", "POST"})


@dataclass(frozen=True, slots=True)
class ProductRoute:
    """One path of a product's front."""

    path: str
    methods: frozenset[str]
    handler: Handler
    #: the pydantic model documenting the request (OpenAPI); None: no body
    model: Any
    summary: str
    auth: bool = True
    #: also served under /hold, on the caller's own accounts
    hosted: bool = False
    #: answers when the job ends (waits; 504 with the jobId past the sync timeout)
    sync: bool = False
    #: the error body's shape, ``(status, message, data) -> body`` (None: the TTAPI
    #: envelope; the OpenAI images routes answer OpenAI's error object)
    error_shape: Callable[[int, str, Any], dict[str, Any]] | None = None
    #: the pydantic model documenting the 200 answer where it is neither a submit's
    #: envelope nor a fetch body (a synchronous route's answer; OpenAPI)
    answer_model: Any = None
    #: takes images: its body may be as large as ``GENGATE_MAX_BODY_BYTES`` (others:
    #: ``GENGATE_MAX_JSON_BODY_BYTES``); such requests are served a few at a time, the
    #: caller's queue and balance checked before the body is read
    images: bool = False


def submitted(job: Job) -> dict[str, Any]:
    """The submit answer: both spellings of the id, as the contract's pages differ."""
    return {"status": "SUCCESS", "message": "success", "data": {"jobId": job.id,
                                                                  "job_id": job.id}}


def fetch_handler(product: Product[Any]) -> Handler:
    """The standard fetch route: ``jobId``/``job_id`` from the query, a JSON body or a
    form body; answers the product's fetch body (404 for another product's job)."""
    from gengate.api.envelope import Raw

    async def fetch(services: Services, call: Call) -> Any:
        return Raw(await services.jobs.fetch_body(call.user_id, call.job_id(), product.name))

    fetch.__doc__ = f"Fetch a {product.title} job (free)"
    return fetch


# -- the product ------------------------------------------------------------------------
OptionsT = TypeVar("OptionsT", bound=Options)


class Product(Generic[OptionsT]):
    """Base of every product. Subclasses set the class attributes and override
    :meth:`routes`, :meth:`fetch_body`, :meth:`task` and :meth:`store_result`."""

    #: the registry name, stored in ``jobs.product`` and price keys
    name: ClassVar[str]
    #: shown on the status page
    title: ClassVar[str]
    options_type: ClassVar[type[Options]]
    statuses: ClassVar[StatusSet] = FOUR_STATUSES
    #: ``action:variant`` -> quota (the product prefix is added by :meth:`prices`)
    default_prices: ClassVar[Mapping[str, float]] = {}
    #: prices on a user's own accounts (/hold); empty: the product is not hosted
    default_hosting_prices: ClassVar[Mapping[str, float]] = {}
    #: the account slots (modes) its jobs can take
    lanes: ClassVar[tuple[Mode, ...]] = (Mode.FAST,)
    #: (default and minimum, maximum) job timeout in seconds per lane
    timeouts: ClassVar[Mapping[Mode, tuple[int, int]]] = TIMEOUTS
    #: the product's fetch path (named in the product-neutral job listing)
    fetch_path: ClassVar[str] = ""
    #: account provider kinds that run this product only when the account names it in
    #: ``products`` (an ``openai`` account added for images does not take Sora videos)
    opt_in_kinds: ClassVar[frozenset[str]] = frozenset()

    # the wire
    def routes(self) -> Sequence[ProductRoute]:
        raise NotImplementedError

    def fetch_body(self, job: Job) -> dict[str, Any]:
        """``{"status", "message", "jobId", "data"}``: fetch answers it and webhooks POST
        it. Statuses through :attr:`statuses`; data keys as the product's contract."""
        raise NotImplementedError

    def options(self, job: Job) -> OptionsT:
        return self.options_type.from_json(job.params)  # type: ignore[return-value]

    # prices and time
    def prices(self, hosting: bool = False) -> dict[str, float]:
        table = self.default_hosting_prices if hosting else self.default_prices
        return {f"{self.name}:{key}": value for key, value in table.items()}

    def timeout(self, lane: Mode, requested: int | None) -> int:
        low, high = self.timeouts.get(lane, TIMEOUTS[Mode.FAST])
        if requested is None:
            return low
        if not low <= requested <= high:
            raise BadRequest(
                f"timeout must be between {low} and {high} seconds for {lane} mode")
        return requested

    # running
    async def task(self, job: Job, io: TaskIO, *, with_parent_image: bool) -> ProviderTask:
        """The upstream task of ``job``; ``with_parent_image``: the adapter wants the
        parent job's stored file first among the inputs (the local renderer does)."""
        from gengate.providers.base import ProviderTask

        return ProviderTask(
            job_id=job.id, action=job.action, prompt=job.prompt,
            mode=job.slot_mode or job.mode.value, product=self.name,
            options=self.options(job).to_json(), images=tuple(await io.inputs(job)),
        )

    async def store_result(self, job: Job, update: ProviderUpdate,
                           io: ResultIO) -> dict[str, Any]:
        """Copy the result's files into gengate's storage; the job's ``result`` (what
        :meth:`fetch_body` reads back). Default: every file saved, ``files`` listed by
        role with its URL under ``outputs``; their storage keys under ``files``."""
        outputs, keys = [], []
        for i, item in enumerate(update.files):
            data = await io.load(item)
            suffix = "" if i == 0 else f"-{item.role}"
            url = await io.save(job, data, item.content_type, suffix)
            keys.append(io.key(job, item.content_type, suffix))
            outputs.append({"role": item.role, "url": url, "source": item.url or url,
                            **dict(item.meta)})
        if not outputs:
            from gengate.providers.base import ProviderError

            raise ProviderError("[Bad response] the upstream returned no file")
        # ``files`` and ``store``: what retention deletes and ``results move`` moves
        return {"outputs": outputs, "files": keys, "store": io.store_name, **update.data}

    def renderer(self) -> LocalRenderer:
        raise NotImplementedError

    def configured(self, settings: Settings) -> Product[OptionsT]:
        """The product as a deployment configures it (default: itself)."""
        return self

    def counts_as_illegal(self, message: str) -> bool:
        """A failure message that counts toward the user's daily illegal-prompt limit
        (past it, failed jobs are not refunded). Default: none does."""
        return False

    def adapters(self) -> Mapping[str, AdapterFactory]:
        """Account provider kind ("ttapi", "bfl", "openai", ...) -> adapter factory.
        The kind ``local`` is the engine's own (it calls :meth:`renderer`)."""
        return {}

    # the product-neutral listing
    def list_item(self, job: Job) -> dict[str, Any]:
        mode, quota = job.charged()
        from gengate.clock import timestamp
        from gengate.quota import from_milli

        return {
            "jobId": job.id, "product": self.name, "action": job.action,
            "status": self.statuses.wire(job.status), "message": job.message,
            "quota": from_milli(quota), "createdAt": timestamp(job.created_at),
            "finishedAt": timestamp(job.finished_at), "fetch": self.fetch_path,
        }
