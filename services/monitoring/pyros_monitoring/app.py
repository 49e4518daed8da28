"""The monitoring service: device health, the weather vote, ``pyros.conditions``, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence

import structlog
from pyros_common.bus.port import Batched, Handler
from pyros_common.contracts import AlertChanged, DeviceStatus, Event, ScheduleChanged, SystemChanged
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import Service, ServiceContext

from pyros_monitoring.handlers import Monitor
from pyros_monitoring.metrics import MonitoringMetrics
from pyros_monitoring.settings import MonitoringSettings
from pyros_monitoring.store import Store

log = structlog.get_logger("pyros.monitoring")


class MonitoringService(Service):
    """Consumes device status (weather sources included), the night, the plan and the alerts;
    publishes the site's conditions on ``pyros.conditions``."""

    name = "monitoring"
    needs_db = True

    def __init__(self, ctx: ServiceContext, *, settings: MonitoringSettings | None = None) -> None:
        super().__init__(ctx)
        self.monitoring_settings = settings or MonitoringSettings()
        self.site_id = get_site(ctx.settings.site).name
        self.metrics = MonitoringMetrics(ctx.registry)
        self._monitor: Monitor | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def monitor(self) -> Monitor:
        if self._monitor is None:  # the database is ready only once the host checked it
            monitor = Monitor(
                ctx=self.ctx,
                settings=self.monitoring_settings,
                store=Store(self.db),
                metrics=self.metrics,
                publish=self.publish,
                site_id=self.site_id,
            )
            # Loaded before the first event, which can come before on_start (the bus consumes
            # from its start on): a load after it would replace what that event changed.
            monitor.load()
            self._monitor = monitor
        return self._monitor

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        return [
            # Kafka hands a whole poll of statuses at once (the in-process bus, one by one)
            (DeviceStatus.topic, Batched(self._on_device, self._on_devices)),
            (SystemChanged.topic, self._on_system),
            (ScheduleChanged.topic, self._on_schedule),
            (AlertChanged.topic, self._on_alert),
        ]

    async def _on_device(self, event: Event) -> None:
        await self.monitor.on_device(event)

    async def _on_devices(self, events: Sequence[Event]) -> None:
        await self.monitor.on_devices(events)

    async def _on_system(self, event: Event) -> None:
        await self.monitor.on_system(event)

    async def _on_schedule(self, event: Event) -> None:
        await self.monitor.on_schedule(event)

    async def _on_alert(self, event: Event) -> None:
        await self.monitor.on_alert(event)

    async def on_start(self) -> None:
        await self.monitor.evaluate(refresh_health=True)
        self._task = asyncio.create_task(self._ticks(), name="monitoring-tick")

    async def _ticks(self) -> None:
        while True:
            await self.clock.sleep(self.monitoring_settings.evaluate_period_s)
            try:
                await self.monitor.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failed tick must not stop the next
                log.warning("monitoring tick failed", error=repr(exc))

    async def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
