"""What the gateway mounts under /api/v1: each service's router factory, called with shared dependencies.

The gateway imports each service's routes and dependencies, never a service: state that only a
running service holds reaches it as events (the devices through ``pyros.device.status``) or from
the database (the scheduler's latest stored schedule).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter
from pyros_alerts import api as alerts_api
from pyros_analyzer import api as analyzer_api
from pyros_common.auth import current_user
from pyros_common.contracts import Event
from pyros_common.db import Database
from pyros_common.runtime.service import ServiceContext
from pyros_device_gateway import api as devices_api
from pyros_majordome import api as majordome_api
from pyros_monitoring import api as monitoring_api
from pyros_observer import api as observer_api
from pyros_routines import api as routines_api
from pyros_routines.privacy import night_view, schedule_view
from pyros_scheduler import api as scheduler_api


@dataclass(frozen=True)
class GatewayDeps:
    """Everything a service's routes need inside the gateway: the context and the read models."""

    ctx: ServiceContext
    devices: devices_api.DeviceView
    system: majordome_api.SystemView

    def db(self) -> Database:
        if self.ctx.db is None:
            raise RuntimeError("the gateway needs a database")
        return self.ctx.db

    def publisher(self, producer: str) -> Callable[[Event, str | None], Awaitable[None]]:
        """Publish on the event's topic, the envelope stamped as ``producer``'s and this node's."""

        async def publish(event: Event, key: str | None) -> None:
            stamped = event.stamped(producer=producer, sent_at=self.ctx.clock.now())
            if "telescope_id" not in event.model_fields_set:
                stamped = stamped.model_copy(update={"telescope_id": self.ctx.settings.telescope_id})
            await self.ctx.bus.publish(type(event).topic, stamped, key)

        return publish


RouterFactory = Callable[[GatewayDeps], APIRouter]


def alerts(deps: GatewayDeps) -> APIRouter:
    receive = alerts_api.publishing_receive(publish=deps.publisher("alerts"), clock=deps.ctx.clock)
    return alerts_api.routes(db=deps.db, receive=receive)


def routines(deps: GatewayDeps) -> APIRouter:
    return routines_api.routes()  # its dependencies come from app.state.ctx


def scheduler(deps: GatewayDeps) -> APIRouter:
    return scheduler_api.routes(
        db=deps.db,
        default_telescope=scheduler_api.default_telescope(deps.ctx.settings),
        auth=current_user,
        view=schedule_view(deps.db),  # a plain user sees other programs' slots as busy time only
    )


def devices(deps: GatewayDeps) -> APIRouter:
    return devices_api.routes(devices=deps.devices)


def observer(deps: GatewayDeps) -> APIRouter:
    return observer_api.routes(
        data_dir=lambda: deps.ctx.settings.data_dir, clock=deps.ctx.clock, auth=current_user
    )


def analyzer(deps: GatewayDeps) -> APIRouter:
    return analyzer_api.routes(data_dir=lambda: deps.ctx.settings.data_dir, auth=current_user)


def majordome(deps: GatewayDeps) -> APIRouter:
    return majordome_api.routes(
        view=deps.system,
        default_telescope=deps.ctx.settings.telescope_id,
        redact=night_view(deps.db),  # a plain user does not see which other program's sequence runs
    )


def monitoring(deps: GatewayDeps) -> APIRouter:
    """``/site/status``, ``/devices/{id}/history``, ``/conditions``: monitoring's tables."""
    return monitoring_api.routes(
        db=deps.db,
        clock=deps.ctx.clock,
        site=deps.ctx.settings.site,
        telescope_id=deps.ctx.settings.telescope_id,
    )


# Mounted in this order (the order of the services in pyros_cli.registry).
ROUTES: tuple[tuple[str, RouterFactory], ...] = (
    ("alerts", alerts),
    ("routines", routines),
    ("scheduler", scheduler),
    ("device-gateway", devices),
    ("majordome", majordome),
    ("monitoring", monitoring),
    ("observer", observer),
    ("analyzer", analyzer),
)
