"""The majordome service: it owns the night (state machine, dispatch, pauses, dawn)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog
from pyros_common.bus.port import Handler
from pyros_common.contracts import ConditionsChanged, DeviceStatus, ObservationChanged, ScheduleChanged
from pyros_common.runtime.service import Service, ServiceContext

from pyros_majordome.handlers import Night
from pyros_majordome.settings import MajordomeSettings

log = structlog.get_logger("pyros.majordome")


class MajordomeService(Service):
    """Runs the night: dusk, dispatch at the planned starts, pauses, preemption, dawn."""

    name = "majordome"
    needs_db = False

    def __init__(self, ctx: ServiceContext, *, settings: MajordomeSettings | None = None) -> None:
        super().__init__(ctx)
        self.night = Night(ctx=ctx, settings=settings or MajordomeSettings(), publish=self.publish)
        self._task: asyncio.Task[None] | None = None

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        n = self.night
        return [
            (ScheduleChanged.topic, n.on_schedule),
            (ObservationChanged.topic, n.on_observation),
            (DeviceStatus.topic, n.on_device),
            (ConditionsChanged.topic, n.on_conditions),
        ]

    async def on_start(self) -> None:
        self._task = asyncio.create_task(self.night.run(), name="majordome-night")

    async def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
