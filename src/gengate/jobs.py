"""Jobs: statuses, modes, timeouts and the Midjourney action vocabulary. Pure, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from gengate.errors import BadRequest

__all__ = [
    "ACTIONS",
    "ActionSpec",
    "Job",
    "JobStatus",
    "Mode",
    "ResultKind",
    "components_for",
    "normalize_action",
    "resolve_timeout",
]


class JobStatus(enum.StrEnum):
    """The four business statuses of the TTAPI contract."""

    PENDING_QUEUE = "PENDING_QUEUE"  #: admitted, waiting for a worker
    ON_QUEUE = "ON_QUEUE"  #: a worker is running it upstream
    SUCCESS = "SUCCESS"  #: results stored, quota settled
    FAILED = "FAILED"  #: ended without a result, quota refunded

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCESS, JobStatus.FAILED)

    @property
    def code(self) -> int:
        """The integer form used by ``fetch-list`` items."""
        return _STATUS_CODES[self]


_STATUS_CODES = {
    JobStatus.PENDING_QUEUE: 0,
    JobStatus.ON_QUEUE: 1,
    JobStatus.SUCCESS: 2,
    JobStatus.FAILED: 3,
}


class Mode(enum.StrEnum):
    """Midjourney speed modes."""

    FAST = "fast"
    RELAX = "relax"
    TURBO = "turbo"


#: (default and minimum, maximum) job timeout in seconds per mode
TIMEOUTS: dict[Mode, tuple[int, int]] = {
    Mode.FAST: (300, 1200),
    Mode.TURBO: (300, 1200),
    Mode.RELAX: (600, 1200),
}


def resolve_timeout(mode: Mode, requested: int | None) -> int:
    """The job's timeout: the mode's default, or the requested one if within range."""
    low, high = TIMEOUTS[mode]
    if requested is None:
        return low
    if not low <= requested <= high:
        raise BadRequest(f"timeout must be between {low} and {high} seconds for {mode} mode")
    return requested


class ResultKind(enum.StrEnum):
    """What a finished job holds, which decides the actions valid on it."""

    GRID = "grid"  #: a 2x2 grid (imagine, variations, zoom, pan, blend, ...)
    IMAGE = "image"  #: one image picked from a grid (U1..U4)
    UPSCALED = "upscaled"  #: an image enlarged by an upscale action
    TEXT = "text"  #: describe: four prompts
    SEED = "seed"  #: the seed of a job


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action of ``POST /midjourney/v1/action``."""

    name: str
    applies_to: frozenset[ResultKind]
    produces: ResultKind
    #: extra detail the renderer needs (quadrant index, factor, direction, ...)
    arg: Any = None


def _spec(name: str, applies: set[ResultKind], produces: ResultKind, arg: Any = None) -> ActionSpec:
    return ActionSpec(name, frozenset(applies), produces, arg)


_G, _I, _U = ResultKind.GRID, ResultKind.IMAGE, ResultKind.UPSCALED

ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in [
        *(_spec(f"upsample{n}", {_G}, _I, n) for n in range(1, 5)),
        *(_spec(f"variation{n}", {_G}, _G, n) for n in range(1, 5)),
        _spec("reroll", {_G}, _G),
        _spec("high_variation", {_I}, _G, 0.45),
        _spec("low_variation", {_I}, _G, 0.15),
        _spec("upscale2", {_I}, _U, 2),
        _spec("upscale4", {_I}, _U, 4),
        _spec("redo_upscale2", {_U}, _U, 2),
        _spec("redo_upscale4", {_U}, _U, 4),
        _spec("upscale_subtle", {_I}, _U, "subtle"),
        _spec("upscale_creative", {_I}, _U, "creative"),
        _spec("redo_upscale_subtle", {_U}, _U, "subtle"),
        _spec("redo_upscale_creative", {_U}, _U, "creative"),
        _spec("zoom_out_2", {_I}, _G, 2.0),
        _spec("zoom_out_1_5", {_I}, _G, 1.5),
        *(_spec(f"pan_{d}", {_I}, _G, d) for d in ("left", "right", "up", "down")),
        _spec("make_square", {_I}, _G),
        _spec("inpaint", {_I}, _G),
    ]
}

#: other vendors' spellings accepted on input; TTAPI's own are emitted
ACTION_ALIASES = {"zoom_out_2x": "zoom_out_2", "zoom_out_1_5x": "zoom_out_1_5"}

#: actions that are not sent to /action but to their own endpoint
ENDPOINT_ONLY_ACTIONS = frozenset({"inpaint"})


def normalize_action(name: str) -> ActionSpec:
    """The spec of an action name (aliases accepted) or a 400 naming the field."""
    canonical = ACTION_ALIASES.get(name, name)
    spec = ACTIONS.get(canonical)
    if spec is None:
        raise BadRequest(f"action: unknown action `{name}`")
    return spec


GRID_COMPONENTS = (
    "upsample1",
    "upsample2",
    "upsample3",
    "upsample4",
    "reroll",
    "variation1",
    "variation2",
    "variation3",
    "variation4",
)


def components_for(
    kind: ResultKind, *, version: str, width: int, height: int, action: str = ""
) -> list[str]:
    """Actions valid on a finished job, in the order Midjourney shows its buttons."""
    if kind is ResultKind.GRID:
        return list(GRID_COMPONENTS)
    if kind is ResultKind.UPSCALED:
        if action.endswith(("subtle", "creative")):
            return ["redo_upscale_subtle", "redo_upscale_creative"]
        return ["redo_upscale2", "redo_upscale4"]
    if kind is not ResultKind.IMAGE:
        return []
    v5 = version.startswith("5") or version == "niji 5"
    upscales = ["upscale2", "upscale4"] if v5 else ["upscale_subtle", "upscale_creative"]
    items = [*upscales, "high_variation", "low_variation", "inpaint", "zoom_out_2", "zoom_out_1_5"]
    if width != height:
        items.append("make_square")
    items += ["pan_left", "pan_right", "pan_up", "pan_down"]
    return items


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the service sees it (the store maps rows to this)."""

    id: str
    user_id: int
    product: str
    action: str
    mode: Mode
    status: JobStatus
    progress: int
    prompt: str
    quota: float
    timeout: int
    created_at: float
    deadline: float
    hook_url: str | None = None
    get_u_images: bool = False
    parent_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    upstream_id: str | None = None
    provider: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: the upstream account running it, and the mode whose slot it takes there
    account_id: int | None = None
    slot_mode: str | None = None
    #: submitted through /hold: runs only on the user's own accounts
    hosted: bool = False
    #: claims so far (a takeover or a move to another account is another attempt)
    attempts: int = 0
    #: the tag of a submit whose upstream task id was never recorded (the worker died or
    #: the answer was lost): the task is looked up by it before the job is sent again
    submit_tag: str | None = None
    #: submits that may have started an upstream task (bounded by ``max_resends``)
    sends: int = 0

    def charged(self) -> tuple[str, int]:
        """The mode the job runs in and the price it is charged on success: a fast job
        moved to a relax slot (its ``relaxFallback``) runs in relax at relax's price."""
        if self.slot_mode and self.slot_mode != self.mode.value:
            fallback = self.params.get("fallback_quota")
            if fallback is not None:
                return self.slot_mode, min(int(fallback), int(self.quota))
        return self.mode.value, int(self.quota)
