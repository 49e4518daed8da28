"""majordome's routes: the night as ``pyros.system`` tells it (the same view in every process)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from pyros_common.auth import current_user
from pyros_common.contracts import Event, SystemChanged

HISTORY = 200


class SystemView:
    """The latest night state per telescope and its recent changes, fed by ``pyros.system``."""

    def __init__(self) -> None:
        self.last: dict[str, SystemChanged] = {}
        self.history: dict[str, deque[SystemChanged]] = {}

    async def on_system(self, event: Event) -> None:
        assert isinstance(event, SystemChanged)
        self.last[event.telescope_id] = event
        self.history.setdefault(event.telescope_id, deque(maxlen=HISTORY)).append(event)

    def view(self, telescope: str) -> dict[str, Any]:
        last = self.last.get(telescope)
        history = list(self.history.get(telescope, ()))
        running = next((e.dispatch for e in reversed(history) if e.dispatch is not None), None)
        return {
            "telescope": telescope,
            "state": None if last is None else last.state,
            "reason": "" if last is None else last.reason,
            "night": None if last is None or last.night is None else last.night.isoformat(),
            "since": None if last is None else last.sent_at.isoformat(),
            "last_dispatch": None if running is None else running.model_dump(mode="json"),
            "history": [
                {"at": e.sent_at.isoformat(), "state": e.state, "reason": e.reason} for e in history[-50:]
            ],
        }


def routes(
    *,
    view: SystemView,
    default_telescope: str,
    auth: Callable[..., Any] = current_user,
    redact: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None,
) -> APIRouter:
    """``GET /night``: state, reason, night, last dispatch and recent changes; ``redact``: what the
    caller may see of it (the gateway's: a plain user sees only their programs' sequences)."""
    r = APIRouter(tags=["night"], dependencies=[Depends(auth)])

    @r.get("/night", summary="The night majordome runs: state and why, last dispatch, recent changes.")
    def get_night(telescope: str | None = None, caller: Any = Depends(auth)) -> dict[str, Any]:
        body = view.view(telescope or default_telescope)
        return body if redact is None else redact(body, caller)

    return r
