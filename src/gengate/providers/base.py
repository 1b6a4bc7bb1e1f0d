"""The contract every upstream adapter implements, in gengate's own types.

A provider takes a :class:`ProviderTask`, answers an upstream task id at once, and reports
progress and the result through :meth:`Provider.poll`. Adapters translate every upstream
failure into :class:`ProviderError` at their boundary.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from gengate.errors import UpstreamError

__all__ = ["Provider", "ProviderError", "ProviderTask", "ProviderUpdate", "TaskState"]


@dataclass(frozen=True, slots=True)
class ProviderTask:
    """One unit of upstream work, built by the worker from a job."""

    job_id: str
    action: str  #: imagine, blend, describe, seed, inpaint or an action name
    prompt: str
    mode: str
    seed: int
    aspect: tuple[int, int]
    version: str
    arg: Any = None  #: action detail: quadrant, factor, direction, strength...
    images: tuple[bytes, ...] = ()  #: parent image, blend inputs, describe image, mask
    params: dict[str, Any] = field(default_factory=dict)


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


class ProviderError(UpstreamError):
    """An upstream refused or broke; ``retryable`` says another try may succeed."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class Provider(Protocol):
    name: str
    #: seconds between polls that this upstream suggests
    poll_interval: float

    async def submit(self, task: ProviderTask) -> str:
        """Start the task upstream; return the upstream task id."""

    async def poll(self, upstream_id: str) -> ProviderUpdate:
        """The task's current state."""

    async def cancel(self, upstream_id: str) -> None:
        """Stop the task upstream if it still runs (best effort)."""

    async def forget(self, upstream_id: str) -> None:
        """The result is stored; the upstream may drop what it kept for this task."""
