"""The observer service: wiring of its handlers, routes and background work."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pyros_common.auth import current_user
from pyros_common.bus.port import Handler
from pyros_common.contracts import DeviceCommand, DeviceStatus, Event, RequestChanged, SystemChanged
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import Service, ServiceContext

from pyros_observer.api import routes
from pyros_observer.devices import DeviceLink
from pyros_observer.executor import Observer
from pyros_observer.filing import Filing
from pyros_observer.handlers import ObserverHandlers
from pyros_observer.metrics import ObserverMetrics
from pyros_observer.settings import ObserverSettings

if TYPE_CHECKING:
    from fastapi import APIRouter


class ObserverService(Service):
    """Executes the one sequence majordome dispatches: devices through device-gateway, images filed."""

    name = "observer"
    needs_db = False  # its state is the night's (in memory) and the data directory

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        observer_settings: ObserverSettings | None = None,
        auth_dependency: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(ctx)
        self.observer_settings = cfg = observer_settings or ObserverSettings()
        self.filing = Filing(ctx.settings.data_dir)
        self.metrics = ObserverMetrics(ctx.registry)
        self.link = DeviceLink(send=self._send, clock=ctx.clock, grace_s=cfg.reply_grace_s)
        self.observer = Observer(
            link=self.link,
            filing=self.filing,
            settings=cfg,
            clock=ctx.clock,
            metrics=self.metrics,
            publish=self._publish,
            lon_deg=get_site(ctx.settings.site).lon_deg,
        )
        self.handlers = ObserverHandlers(observer=self.observer, link=self.link)
        self._auth = auth_dependency if auth_dependency is not None else current_user

    async def _send(self, cmd: DeviceCommand) -> None:
        await self.publish(cmd)

    async def _publish(self, event: Event, correlation_id: str | None) -> None:
        await self.publish(event, correlation_id=correlation_id)

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        h = self.handlers
        return [
            (RequestChanged.topic, h.on_request),
            (SystemChanged.topic, h.on_system),
            (DeviceStatus.topic, h.on_status),
        ]

    def router(self) -> APIRouter:
        return routes(data_dir=lambda: self.settings.data_dir, clock=self.clock, auth=self._auth)

    async def on_start(self) -> None:
        self.filing.prepare()

    async def on_stop(self) -> None:
        await self.observer.shutdown()
