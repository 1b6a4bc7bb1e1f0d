"""The two projects named midjourney-proxy, and how their follow-up actions differ.

- trueai-org's fork: a finished task carries ``buttons``; a follow-up action presses one of
  them through ``/mj/submit/action`` (its ``customId``), and buttons that need more input,
  such as Vary (Region), wait in ``MODAL`` for ``/mj/submit/modal``. It also tells a task's
  seed (``/mj/task/{id}/image-seed``) and cancels tasks.
- novicezk's original: tasks carry no ``buttons``; the only follow-ups are U1-U4, V1-V4 and
  reroll of a grid, through ``/mj/submit/change`` (``taskId``, ``action``
  UPSCALE|VARIATION|REROLL, ``index``). It has no action, modal, image-seed or cancel route
  and ignores ``accountFilter``.

An account says which it speaks (``protocol``); ``auto`` tells them apart by a task of its
own (:func:`speaks`). The routes themselves are called by
:mod:`gengate.products.midjourney.providers.midjourney_proxy`; this module holds only what
differs between the two, as data and pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["BUTTONS", "CHANGES", "PROTOCOLS", "UNSUPPORTED", "button_for", "change_body",
           "follow_ups", "speaks"]

#: ``protocol`` values of an account
PROTOCOLS = ("auto", "trueai", "novicezk")
#: messages of actions the account's proxy cannot run start with this: the upstream's
#: limit, not the user's prompt (never an illegal-prompt count)
UNSUPPORTED = "[Unsupported action] "

#: novicezk's /mj/submit/change: our action -> (action, index)
CHANGES: dict[str, tuple[str, int | None]] = {
    **{f"upsample{n}": ("UPSCALE", n) for n in range(1, 5)},
    **{f"variation{n}": ("VARIATION", n) for n in range(1, 5)},
    "reroll": ("REROLL", None),
}
#: the upstream actions novicezk's /change takes a parent of (SubmitController.change)
_CHANGE_PARENTS = frozenset({"IMAGINE", "VARIATION", "REROLL", "BLEND"})

#: trueai-org's buttons: our action name -> the customId prefix of the button that does it
BUTTONS: dict[str, str] = {
    **{f"upsample{n}": f"MJ::JOB::upsample::{n}::" for n in range(1, 5)},
    **{f"variation{n}": f"MJ::JOB::variation::{n}::" for n in range(1, 5)},
    "reroll": "MJ::JOB::reroll::0::",
    "upscale_subtle": "MJ::JOB::upsample_v6_2x_subtle::",
    "redo_upscale_subtle": "MJ::JOB::upsample_v6_2x_subtle::",
    "upscale_creative": "MJ::JOB::upsample_v6_2x_creative::",
    "redo_upscale_creative": "MJ::JOB::upsample_v6_2x_creative::",
    "upscale2": "MJ::JOB::upsample_v5_2x::",
    "redo_upscale2": "MJ::JOB::upsample_v5_2x::",
    "upscale4": "MJ::JOB::upsample_v5_4x::",
    "redo_upscale4": "MJ::JOB::upsample_v5_4x::",
    "high_variation": "MJ::JOB::high_variation::",
    "low_variation": "MJ::JOB::low_variation::",
    "zoom_out_2": "MJ::Outpaint::50::",
    "zoom_out_1_5": "MJ::Outpaint::75::",
    **{f"pan_{d}": f"MJ::JOB::pan_{d}::" for d in ("left", "right", "up", "down")},
    "make_square": "MJ::JOB::make_square::",
    "inpaint": "MJ::Inpaint::",
}


def speaks(protocol: str, task: Mapping[str, Any]) -> str:
    """The account's protocol: configured, or told by a task of its own (only
    trueai-org's tasks have ``buttons``)."""
    if protocol != "auto":
        return protocol
    return "trueai" if "buttons" in task else "novicezk"


def _custom_ids(task: Mapping[str, Any]) -> list[str]:
    return [str(b.get("customId", "")) for b in task.get("buttons") or []
            if isinstance(b, Mapping)]


def button_for(action: str, parent: Mapping[str, Any]) -> str | None:
    """trueai-org: the ``customId`` of the parent's button that runs ``action``, if any."""
    prefix = BUTTONS.get(action)
    if prefix is None:
        return None
    return next((i for i in _custom_ids(parent) if i.startswith(prefix)), None)


def change_body(action: str, parent_id: str, parent: Mapping[str, Any]) -> dict[str, Any] | None:
    """novicezk: the ``/mj/submit/change`` body that runs ``action`` on the parent, or
    ``None`` where that proxy cannot (not U/V/reroll, or a parent that is no grid)."""
    change = CHANGES.get(action)
    if change is None or parent.get("action") not in _CHANGE_PARENTS:
        return None
    name, index = change
    body: dict[str, Any] = {"taskId": parent_id, "action": name}
    if index is not None:
        body["index"] = index
    return body


def follow_ups(task: Mapping[str, Any], protocol: str) -> list[str]:
    """The follow-up actions the account can run on a finished task: those of its buttons
    (trueai-org), or U1-U4, V1-V4 and reroll of a grid (novicezk's /change)."""
    if protocol == "novicezk":
        return list(CHANGES) if task.get("action") in _CHANGE_PARENTS else []
    ids = _custom_ids(task)
    return [name for name, prefix in BUTTONS.items()
            if any(i.startswith(prefix) for i in ids)]
