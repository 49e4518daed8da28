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
from pyros_device_gateway.config import DeviceSpec, build_drivers, load_devices
from pyros_device_gateway.drivers import DeviceDriver
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
            reconnect_min_s=gs.reconnect_min_s,
            reconnect_max_s=gs.reconnect_max_s,
            producer=self.name,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _default_drivers(self) -> dict[str, DeviceDriver]:
        """Simulators for every device, except those the site file's [[devices]] put on INDI.

        Without [[devices]], PYROS_INDI_HOST still puts the mount (only) on INDI.
        """
        gs, st = self.gateway_settings, self.settings
        self.simulators = SimulatedObservatory.build(
            self.clock,
            self.site,
            seed=gs.simulator_seed,
            telescope=TelescopeConfig(horizon_limit_deg=gs.horizon_limit_deg),
        )
        indi_default = (st.indi_host, st.indi_port) if st.indi_host else None
        specs = load_devices(st.site, indi_default=indi_default)
        if not specs and st.indi_host:
            specs = [
                DeviceSpec(
                    id="telescope",
                    kind="telescope",
                    driver="indi",
                    indi_host=st.indi_host,
                    indi_port=st.indi_port,
                    indi_device=gs.indi_telescope,
                )
            ]
        return build_drivers(
            specs,
            simulated=self.simulators.drivers(),
            clock=self.clock,
            site=self.site,
            telescope_name=st.telescope_id,
            horizon_limit_deg=gs.horizon_limit_deg,
        )

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        return [(DeviceCommand.topic, self.handler.handle)]

    def router(self) -> APIRouter | None:
        async def publish(cmd: DeviceCommand) -> DeviceCommand:
            stamped = cmd.stamped(producer=self.name, sent_at=self.clock.now()).model_copy(
                update={"telescope_id": self.settings.telescope_id}
            )
            await self.bus.publish(DeviceCommand.topic, stamped, cmd.device_id)
            return stamped

        r = routes(devices=HandlerDevices(lambda: self.handler), publish=publish)
        faults = self.faults_router()
        if faults is not None:
            r.include_router(faults)
        return r

    def faults_router(self) -> APIRouter | None:
        """The simulators' fault API (disconnect, hang, refuse, clear), when devices are simulated."""
        if self.simulators is None:
            return None
        from pyros_device_gateway.drivers.simulator.faults_api import simulator_faults_router

        return simulator_faults_router(observatory=self.simulators)

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
        self._tasks.append(asyncio.create_task(self._reconnect_loop(), name="reconnect"))

    async def _status_loop(self, device_id: str, period_s: float) -> None:
        while True:
            try:
                await self.handler.publish_status(device_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a status that cannot be sent must not stop the loop
                log.warning("status not sent", device_id=device_id, error=repr(exc))
            await self.clock.sleep(period_s)

    async def _reconnect_loop(self) -> None:
        """Ping the offline devices whose backoff ran out; those that answer are re-initialised."""
        while True:
            try:
                await self.handler.reconnect_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reconnect pass failed", error=repr(exc))
            await self.clock.sleep(self.gateway_settings.reconnect_poll_s)

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
