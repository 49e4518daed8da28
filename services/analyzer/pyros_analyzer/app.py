"""The analyzer service: wiring of its handlers, routes and background work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pyros_common.auth import current_user
from pyros_common.bus.port import Handler
from pyros_common.contracts import AlertChanged, Event, ImageWritten, RequestChanged
from pyros_common.runtime.service import Service, ServiceContext

from pyros_analyzer.analyzer import Analyzer
from pyros_analyzer.api import routes
from pyros_analyzer.catalogue import Catalogue, SimulatedSkyCatalogue, make_catalogue
from pyros_analyzer.fsc import FscInbox, http_forward
from pyros_analyzer.handlers import AnalyzerHandlers
from pyros_analyzer.metrics import AnalyzerMetrics
from pyros_analyzer.settings import AnalyzerSettings

if TYPE_CHECKING:
    from fastapi import APIRouter


class AnalyzerService(Service):
    """Calibrates, solves and measures every image; for alert requests, finds and reports the afterglow."""

    name = "analyzer"
    needs_db = False  # its state is the night's (memory) and the data directory (products, masters)

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        analyzer_settings: AnalyzerSettings | None = None,
        catalogue: Catalogue | None = None,
        auth_dependency: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(ctx)
        self.analyzer_settings = cfg = analyzer_settings or AnalyzerSettings()
        self.metrics = AnalyzerMetrics(ctx.registry)
        self.analyzer = Analyzer(
            data_dir=ctx.settings.data_dir,
            settings=cfg,
            catalogue=catalogue or make_catalogue(cfg.catalogue, cfg.index_dir),
            clock=ctx.clock,
            metrics=self.metrics,
            publish=self._publish,
            telescope=ctx.settings.telescope_id,
        )
        self.handlers = AnalyzerHandlers(self.analyzer)
        token = cfg.alerts_api_token.get_secret_value()
        self.fsc = FscInbox(
            ctx.settings.data_dir / "EXTERNAL_ENTITIES" / "FSC" / "FROM",
            forward=http_forward(cfg.alerts_api_url, token) if cfg.alerts_api_url and token else None,
            clock=ctx.clock,
            poll_s=cfg.fsc_poll_s,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._auth = auth_dependency if auth_dependency is not None else current_user

    def use_sky(self, sky: Any) -> None:
        """Simulation: the simulated sky is the deep catalogue (pyros night, pyros up --simulate)."""
        self.analyzer.catalogue = SimulatedSkyCatalogue(sky)

    async def _publish(self, event: Event, correlation_id: str | None) -> None:
        await self.publish(event, correlation_id=correlation_id)

    async def on_start(self) -> None:
        self._tasks.append(asyncio.create_task(self.fsc.run(), name="analyzer-fsc-inbox"))

    async def on_stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        h = self.handlers
        return [
            (ImageWritten.topic, h.on_image),
            (AlertChanged.topic, h.on_alert),
            (RequestChanged.topic, h.on_request),
        ]

    def router(self) -> APIRouter:
        return routes(data_dir=lambda: self.settings.data_dir, auth=self._auth)
