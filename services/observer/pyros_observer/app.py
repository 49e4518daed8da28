"""The observer service: wiring of its handlers, routes and background work."""

from __future__ import annotations

from pyros_common.runtime.service import Service


class ObserverService(Service):
    """observer (lifecycle, heartbeat, health and metrics; its domain arrives with its own issue)."""

    name = "observer"
    needs_db = True
