"""The shape every PyROS service shares: lifecycle, subscriptions, routes, dependencies in the constructor."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from prometheus_client import CollectorRegistry
from pyros_common.bus.metrics import BusMetrics
from pyros_common.bus.port import Bus, Handler
from pyros_common.clock import Clock
from pyros_common.contracts import Event
from pyros_common.db import Database
from pyros_common.settings import Settings

if TYPE_CHECKING:
    from fastapi import APIRouter


class LifecycleState(StrEnum):
    STANDBY = "STANDBY"
    ENABLED = "ENABLED"
    FAULT = "FAULT"


@dataclass
class ServiceContext:
    """Everything a service needs, handed in by whoever starts it (``pyros run``, ``pyros up``, a test)."""

    bus: Bus
    clock: Clock
    settings: Settings
    db: Database | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    bus_metrics: BusMetrics | None = None


class Service:
    """Base class: subclasses declare their subscriptions, routes and background work."""

    name: ClassVar[str] = ""
    needs_db: ClassVar[bool] = True

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.bus = ctx.bus
        self.clock = ctx.clock
        self.settings = ctx.settings
        self.state = LifecycleState.STANDBY
        self.reason = "starting"
        self.started_at = ctx.clock.monotonic()

    @property
    def group(self) -> str:
        """Consumer group of this service's subscriptions."""
        return self.name

    @property
    def db(self) -> Database:
        if self.ctx.db is None:
            raise RuntimeError(f"{self.name} needs a database")
        return self.ctx.db

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        """(topic, handler) pairs; the consumer group is the service name."""
        return ()

    def router(self) -> APIRouter | None:
        """Routes mounted under /api/v1 by the gateway."""
        return None

    async def on_start(self) -> None:
        """Start background work (intakes, timers). Called once prerequisites are met."""

    async def on_stop(self) -> None:
        """Stop background work."""

    async def publish(
        self, event: Event, *, correlation_id: str | None = None, key: str | None = None
    ) -> None:
        """Stamp the envelope (producer, time, telescope) and publish on the event's topic."""
        stamped = event.stamped(producer=self.name, sent_at=self.clock.now(), correlation_id=correlation_id)
        if "telescope_id" not in event.model_fields_set:  # not chosen by the caller: this node's telescope
            stamped = stamped.model_copy(update={"telescope_id": self.settings.telescope_id})
        await self.bus.publish(type(event).topic, stamped, key)
