"""The contract every upstream adapter implements, in gengate's own types.

A provider is bound to one upstream account. It takes a :class:`ProviderTask`, answers an
upstream task id at once, and reports progress and results through
:meth:`Provider.poll_many`, which asks about all of the account's running tasks in one
go. Adapters translate every upstream failure into :class:`ProviderError` at their
boundary, with a :class:`~gengate.accounts.FailureKind` that tells routing whether the
job or the account is at fault.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from gengate.accounts import FailureKind
from gengate.errors import UpstreamError
from gengate.products.base import ResultFile

__all__ = ["FailureKind", "Provider", "ProviderError", "ProviderTask", "ProviderUpdate",
           "ResultFile", "TaskState"]


@dataclass(frozen=True, slots=True)
class ProviderTask:
    """One unit of upstream work, built by the worker from a job."""

    job_id: str
    action: str  #: the product's action: imagine, upsample1, generate, edits, ...
    prompt: str
    mode: str  #: the account slot (speed mode) it runs in
    seed: int = 0
    aspect: tuple[int, int] = (1, 1)
    version: str = ""
    arg: Any = None  #: action detail: quadrant, factor, direction, strength...
    images: tuple[bytes, ...] = ()  #: parent image, blend inputs, describe image, mask
    params: dict[str, Any] = field(default_factory=dict)
    #: the parent job's task id on this same account (follow-up actions, seed, inpaint)
    parent_upstream_id: str | None = None
    #: gengate's own name for this one submit (unique per job and send); an upstream that
    #: keeps a caller-supplied value on its tasks stores it, so :meth:`Provider.find` can
    #: find the task again when the submit's answer was lost
    tag: str | None = None
    #: the job's product, and its typed options as JSON (``Product.options_type``)
    product: str = "midjourney"
    options: dict[str, Any] = field(default_factory=dict)


class TaskState(enum.StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProviderUpdate:
    """What an upstream task looks like now."""

    state: TaskState
    progress: int = 0
    image: bytes | None = None  #: the result file (a grid or one image)
    image_url: str | None = None  #: or where to download it, for remote upstreams
    prompts: tuple[str, ...] = ()  #: describe
    seed: str | None = None  #: seed
    message: str = ""  #: failure reason, public
    #: for FAILED: whether the job or the account is at fault (an account-level failure
    #: sends the job to another account instead of failing it)
    kind: FailureKind = FailureKind.JOB
    #: the result's files (every product but Midjourney, which uses ``image``)
    files: tuple[ResultFile, ...] = ()
    #: extra result facts the product stores (revised prompt, size, ...)
    data: dict[str, Any] = field(default_factory=dict)


class ProviderError(UpstreamError):
    """An upstream refused or broke.

    ``kind`` says who is at fault (see :class:`FailureKind`); ``retry_after`` is the
    upstream's own Retry-After in seconds, when it gave one. The message is public: it
    becomes the job's failure message when the job cannot go elsewhere.
    """

    def __init__(self, message: str, *, kind: FailureKind = FailureKind.JOB,
                 retry_after: float | None = None, retryable: bool | None = None,
                 uncertain: bool = False):
        super().__init__(message)
        if retryable and kind is FailureKind.JOB:
            kind = FailureKind.UNAVAILABLE
        self.kind = kind
        self.retry_after = retry_after
        #: the request may have reached the upstream and started a task although no
        #: answer came back (a timeout or a connection dropped after the request was sent)
        self.uncertain = uncertain

    @property
    def retryable(self) -> bool:
        """Another try (here or on another account) may succeed."""
        return self.kind is not FailureKind.JOB


class Provider(Protocol):
    name: str
    #: seconds between polls that this upstream suggests
    poll_interval: float
    #: the worker sends the parent job's stored image with follow-up actions (the local
    #: renderer needs it; remote upstreams act on their own copy of the parent task)
    wants_parent_image: bool
    #: :meth:`find` can tell whether a submit with a given tag started a task
    finds_by_tag: bool

    async def submit(self, task: ProviderTask) -> str:
        """Start the task upstream; return the upstream task id."""

    async def find(self, tag: str, task: ProviderTask | None = None) -> str | None:
        """The upstream id of the task submitted with this :attr:`ProviderTask.tag`, or
        ``None`` when the upstream has no such task. Raises :class:`ProviderError` when it
        cannot tell now. Only meaningful where :attr:`finds_by_tag` is true. Given the
        ``task`` the tag was sent with, the provider finishes a submit that stopped halfway
        (e.g. a modal left unconfirmed)."""

    async def poll_many(self, upstream_ids: list[str]) -> dict[str, ProviderUpdate]:
        """The current state of several tasks, in as few upstream requests as the
        protocol allows. A task the upstream no longer knows is left out of the answer
        (the worker treats it as :attr:`FailureKind.LOST`)."""

    async def probe(self) -> None:
        """Check that the account can take work now; raise :class:`ProviderError` with
        the failure's kind if not. Used to bring cooling and flagged accounts back."""

    async def close(self) -> None:
        """Release connections (the account was changed or removed)."""

    async def cancel(self, upstream_id: str) -> None:
        """Stop the task upstream if it still runs (best effort). An adapter whose
        upstream can stop a task sets ``supports_cancel = True`` (a running job's cancel
        by its owner is refused otherwise)."""

    async def forget(self, upstream_id: str) -> None:
        """The result is stored; the upstream may drop what it kept for this task."""
