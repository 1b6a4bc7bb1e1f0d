"""Incidents and maintenance windows that operators post on the public status page: the
products they affect, a state that moves investigating -> identified -> monitoring ->
resolved, and timestamped updates."""

from __future__ import annotations

from typing import Any

from gengate.clock import Clock
from gengate.errors import BadRequest
from gengate.store import Store

__all__ = ["KINDS", "STATES", "IncidentService"]

KINDS = ("incident", "maintenance")
STATES = ("investigating", "identified", "monitoring", "resolved")
#: resolved incidents stay on the status page this long
SHOWN_AFTER_RESOLVED = 7 * 86_400


class IncidentService:
    def __init__(self, store: Store, clock: Clock, products: list[str]):
        self.store = store
        self.clock = clock
        self.products = products

    async def post(self, kind: str, title: str, products: list[str], state: str,
                   message: str) -> int:
        if kind not in KINDS:
            raise BadRequest(f"kind: must be one of {', '.join(KINDS)}")
        title = title.strip()
        if not 1 <= len(title) <= 200:
            raise BadRequest("title: must be 1 to 200 characters")
        unknown = [p for p in products if p not in self.products]
        if unknown:
            raise BadRequest(f"products: unknown product `{unknown[0]}`; use "
                             f"{', '.join(self.products)}")
        _state(state)
        if state == "resolved":
            raise BadRequest("state: a new incident cannot start resolved")
        return await self.store.create_incident(kind, title, sorted(set(products)), state,
                                                _message(message), self.clock.now())

    async def update(self, incident_id: int, state: str, message: str) -> None:
        _state(state)
        await self.store.update_incident(incident_id, state, _message(message),
                                         state == "resolved", self.clock.now())

    async def recent(self) -> list[dict[str, Any]]:
        """Open incidents and those resolved in the last week, newest first."""
        return await self.store.incidents(self.clock.now() - SHOWN_AFTER_RESOLVED, 50)


def _state(state: str) -> None:
    if state not in STATES:
        raise BadRequest(f"state: must be one of {', '.join(STATES)}")


def _message(message: str) -> str:
    message = message.strip()
    if not 1 <= len(message) <= 5000:
        raise BadRequest("message: must be 1 to 5000 characters")
    return message
