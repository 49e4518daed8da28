"""The device-gateway service: wiring of its handlers, routes and background work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import structlog
from pyros_common.bus.port import Handler
from pyros_common.contracts import DeviceCommand
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import Service, ServiceContext
from pyros_simulators import TelescopeConfig

from pyros_device_gateway.api import HandlerDevices, routes
from pyros_device_gateway.drivers import DeviceDriver
from pyros_device_gateway.drivers.indi import IndiClient, IndiTelescopeDriver
from pyros_device_gateway.drivers.simulator import SimulatedObservatory
from pyros_device_gateway.handlers import CommandHandler
from pyros_device_gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from fastapi import APIRouter

log = structlog.get_logger("pyros.device_gateway")


class DeviceGatewayService(Service):
    """The only service that talks to devices: INDI for real hardware, simulators for the rest."""

    name = "device-gateway"
    needs_db = False

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        gateway_settings: GatewaySettings | None = None,
        drivers: Mapping[str, DeviceDriver] | None = None,
    ) -> None:
        super().__init__(ctx)
        self.gateway_settings = gs = gateway_settings or GatewaySettings()
        self.site = get_site(ctx.settings.site)
        self.simulators: SimulatedObservatory | None = None
        if drivers is None:
            drivers = self._default_drivers()
        self.handler = CommandHandler(
            drivers=drivers,
            clock=ctx.clock,
            site=self.site,
            data_dir=ctx.settings.data_dir,
            publish=lambda status, corr: self.publish(status, correlation_id=corr),
            recent_commands=gs.recent_commands,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _default_drivers(self) -> dict[str, DeviceDriver]:
        """Simulators for every device; the mount through INDI when PYROS_INDI_HOST is set."""
        gs, st = self.gateway_settings, self.settings
        self.simulators = SimulatedObservatory.build(
            self.clock,
            self.site,
            seed=gs.simulator_seed,
            telescope=TelescopeConfig(horizon_limit_deg=gs.horizon_limit_deg),
        )
        drivers = self.simulators.drivers()
        if st.indi_host:
            drivers["telescope"] = IndiTelescopeDriver(
                "telescope",
                IndiClient(st.indi_host, st.indi_port),
                indi_device=gs.indi_telescope,
                clock=self.clock,
                site=self.site,
                horizon_limit_deg=gs.horizon_limit_deg,
            )
        return drivers

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        return [(DeviceCommand.topic, self.handler.handle)]

    def router(self) -> APIRouter | None:
        return routes(devices=HandlerDevices(lambda: self.handler))

    async def on_start(self) -> None:
        for device_id, dev in self.handler.devices.items():
            period = (
                self.gateway_settings.weather_period_s
                if dev.driver.kind in ("weather", "plc")
                else self.gateway_settings.status_period_s
            )
            self._tasks.append(
                asyncio.create_task(self._status_loop(device_id, period), name=f"status-{device_id}")
            )

    async def _status_loop(self, device_id: str, period_s: float) -> None:
        while True:
            try:
                await self.handler.publish_status(device_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a status that cannot be sent must not stop the loop
                log.warning("status not sent", device_id=device_id, error=repr(exc))
            await self.clock.sleep(period_s)

    async def on_stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.handler.cancel_all()
        for dev in self.handler.devices.values():
            with contextlib.suppress(Exception):
                await dev.driver.close()
