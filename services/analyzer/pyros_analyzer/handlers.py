"""Consumers of pyros.images, pyros.alerts and pyros.requests; a handler never raises."""

from __future__ import annotations

import structlog
from pyros_common.contracts import AlertChanged, Event, ImageWritten, RequestChanged

from pyros_analyzer.analyzer import Analyzer

log = structlog.get_logger("pyros.analyzer")


class AnalyzerHandlers:
    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer

    async def on_image(self, event: Event) -> None:
        if not isinstance(event, ImageWritten):
            return
        try:
            await self.analyzer.on_image(event, event.correlation_id or None)
        except Exception as exc:
            log.exception("image not handled", path=event.path)
            try:
                await self.analyzer._dead_letter(
                    event, f"analyzer error: {exc!r}", event.correlation_id or None
                )
            except Exception:
                log.exception("dead letter not published", path=event.path)

    async def on_alert(self, event: Event) -> None:
        if isinstance(event, AlertChanged):
            self.analyzer.on_alert(event)

    async def on_request(self, event: Event) -> None:
        if isinstance(event, RequestChanged):
            self.analyzer.on_request(event)
