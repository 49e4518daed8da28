"""The API gateway: one FastAPI app mounting every service's routes under /api/v1.

It composes the services' router factories (``pyros_gateway.routes``) and never builds a service;
what only a running service knows reaches it as events (heartbeats, device status).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from pyros_common.bus.port import Handler
from pyros_common.contracts import SERVICES, DeviceStatus, Event, Heartbeat, SystemChanged
from pyros_common.runtime.http import limit_bodies, ops_router
from pyros_common.runtime.service import Service, ServiceContext
from pyros_device_gateway.api import DeviceView
from pyros_majordome.api import SystemView

from pyros_gateway.routes import GatewayDeps, RouterFactory


class HealthTracker:
    """Each service's last heartbeat, as seen on pyros.heartbeat."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.last: dict[str, Heartbeat] = {}
        self.seen_at: dict[str, datetime] = {}

    async def on_heartbeat(self, event: Event) -> None:
        assert isinstance(event, Heartbeat)
        self.last[event.service] = event
        self.seen_at[event.service] = self.ctx.clock.now()

    def report(self) -> dict[str, Any]:
        now = self.ctx.clock.now()
        stale_after = 3 * self.ctx.settings.heartbeat_s + 2
        services: dict[str, Any] = {}
        for name in SERVICES:
            hb = self.last.get(name)
            if hb is None:
                services[name] = {"state": "UNKNOWN", "reason": "no heartbeat yet", "last_seen": None}
                continue
            age = (now - self.seen_at[name]).total_seconds()
            stale = age > stale_after
            services[name] = {
                "state": "UNKNOWN" if stale else hb.state,
                "reason": f"no heartbeat for {age:.0f} s" if stale else hb.reason,
                "last_seen": self.seen_at[name].isoformat(),
                "uptime_s": round(hb.uptime_s, 1),
            }
        ok = all(v["state"] == "ENABLED" for v in services.values())
        return {"status": "ok" if ok else "degraded", "time": now.isoformat(), "services": services}


class GatewayService(Service):
    """Hosts the public REST API; consumes heartbeats for /api/v1/health, device status for /devices."""

    name = "gateway"
    needs_db = True

    def __init__(
        self,
        ctx: ServiceContext,
        routes: Iterable[tuple[str, RouterFactory]] = (),
        group_suffix: str = "",
    ) -> None:
        """``routes``: (service name, router factory) pairs, mounted in order; never a service."""
        super().__init__(ctx)
        self.routes = list(routes)
        self.tracker = HealthTracker(ctx)
        self.devices = DeviceView(ctx.clock)
        self.system = SystemView()
        self.group_suffix = group_suffix

    @property
    def group(self) -> str:
        # Every gateway replica needs every heartbeat and status, so each has a group of its own.
        return self.name + self.group_suffix

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        return [
            (Heartbeat.topic, self.tracker.on_heartbeat),
            (DeviceStatus.topic, self.devices.on_status),
            (SystemChanged.topic, self.system.on_system),
        ]

    def create_app(self, hosted: list[Service]) -> FastAPI:
        app = FastAPI(
            title="PyROS API",
            version="0.1.0",
            description="Robotic observatory control: alerts, requests, programs, schedules, devices.",
            openapi_url="/openapi.json",
            docs_url="/docs",
        )
        app.state.ctx = self.ctx  # request.app.state.ctx: settings, db, bus, clock for route dependencies
        app.include_router(ops_router(hosted, self.ctx.registry))
        api = APIRouter(prefix="/api/v1")

        @api.get("/health", tags=["operations"], summary="State of every PyROS service.")
        async def health() -> dict[str, Any]:
            return self.tracker.report()

        app.include_router(api)
        deps = GatewayDeps(ctx=self.ctx, devices=self.devices, system=self.system)
        for _name, factory in self.routes:
            app.include_router(factory(deps), prefix="/api/v1")
        return limit_bodies(app)  # every route: a body over its limit is 413 before it is read whole
