"""The routines service: requests, programs, quotas and users; its routes and its consumers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pyros_common.bus.port import Handler
from pyros_common.contracts import ObservationChanged, RequestChanged, ScheduleChanged
from pyros_common.runtime.service import Service, ServiceContext

from pyros_routines.handlers import Handlers

if TYPE_CHECKING:
    from fastapi import APIRouter


class RoutinesService(Service):
    """Astronomers' requests, scientific programs, quotas, users and roles."""

    name = "routines"
    needs_db = True

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self.handlers = Handlers(ctx)

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        return [
            (RequestChanged.topic, self.handlers.on_request),
            (ObservationChanged.topic, self.handlers.on_observation),
            (ScheduleChanged.topic, self.handlers.on_schedule),
        ]

    def router(self) -> APIRouter:
        from pyros_routines.api import routes

        return routes()
