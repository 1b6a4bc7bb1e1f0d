"""Midjourney's action vocabulary: the buttons of ``/midjourney/v1/action``, what each
applies to and produces, and the ``components`` of a finished job. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from gengate.errors import BadRequest

__all__ = [
    "ACTIONS",
    "ENDPOINT_ONLY_ACTIONS",
    "ActionSpec",
    "ResultKind",
    "components_for",
    "normalize_action",
]


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
