"""The alerts service: wiring of its handlers, routes and background work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import structlog
from pyros_common.auth import current_user, require_role
from pyros_common.bus.port import Handler
from pyros_common.contracts import Event, VoeventReceived
from pyros_common.runtime.service import Service, ServiceContext

from pyros_alerts import store
from pyros_alerts.api import Receive, publishing_receive, routes
from pyros_alerts.handlers import VoeventHandler
from pyros_alerts.intakes import GcnKafkaIntake, VtpIntake
from pyros_alerts.metrics import AlertsMetrics
from pyros_alerts.settings import AlertsSettings

if TYPE_CHECKING:
    from fastapi import APIRouter

log = structlog.get_logger("pyros.alerts")


class AlertsService(Service):
    """VOEvents in (VTP, GCN Kafka, HTTP), one alert per astrophysical event, alert requests out."""

    name = "alerts"
    needs_db = True

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        alerts_settings: AlertsSettings | None = None,
        auth_dependency: Callable[..., Any] | None = None,
        admin_dependency: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(ctx)
        self.alerts_settings = alerts_settings or AlertsSettings()
        self.metrics = AlertsMetrics(ctx.registry)
        self._writer = auth_dependency or require_role("admin", "expert")
        self._admin = admin_dependency or auth_dependency or require_role("admin")
        self._reader = auth_dependency or current_user
        self._handler: VoeventHandler | None = None
        self._receive: Receive | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.vtp: VtpIntake | None = None
        self.gcn: GcnKafkaIntake | None = None

    @property
    def handler(self) -> VoeventHandler:
        if self._handler is None:
            self._handler = VoeventHandler(
                db=self.db,
                clock=self.clock,
                metrics=self.metrics,
                policy=self.alerts_settings.policy(),
                group=self.group,
                publish=lambda event, corr: self.publish(event, correlation_id=corr),
            )
        return self._handler

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        return [(VoeventReceived.topic, self.handler.handle)]

    def router(self) -> APIRouter | None:
        return routes(
            db=lambda: self.db,
            receive=self.receive,
            writer=self._writer,
            admin=self._admin,
            reader=self._reader,
        )

    async def on_start(self) -> None:
        with self.db.session() as s:
            added = store.seed_strategies(s)
        if added:
            log.info("strategies seeded from YAML", count=added)
        self.handler.reload()
        log.info("alert book rebuilt", alerts=len(self.handler.book.alerts))
        st, al = self.settings, self.alerts_settings
        if st.vtp_host:
            self.vtp = VtpIntake(
                host=st.vtp_host,
                port=st.vtp_port,
                local_ivo=al.vtp_local_ivo,
                clock=self.clock,
                submit=self.receive,
                backoff_max_s=al.vtp_backoff_max_s,
                silence_s=al.vtp_silence_s,
            )
            self._tasks.append(asyncio.create_task(self.vtp.run(), name="alerts-vtp"))
        if st.gcn_bootstrap or st.gcn_client_id:
            self.gcn = GcnKafkaIntake(
                submit=self.receive,
                topics=al.gcn_topics,
                group=al.gcn_group,
                bootstrap=st.gcn_bootstrap,
                topic_prefix=al.gcn_topic_prefix,
                client_id=st.gcn_client_id,
                client_secret=st.gcn_client_secret.get_secret_value() if st.gcn_client_secret else None,
                domain=st.gcn_domain,
            )
            self._tasks.append(
                asyncio.create_task(self._guard(self.gcn.run(), "gcn-kafka"), name="alerts-gcn")
            )

    async def _guard(self, work: Any, what: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("intake stopped", intake=what)

    async def on_stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def receive(self, raw: bytes, intake: str) -> VoeventReceived | None:
        """Publish one packet, verbatim, on ``pyros.voevents.raw`` keyed by its IVORN."""
        if self._receive is None:

            async def publish(event: Event, key: str | None) -> None:
                await self.publish(event, key=key)

            self._receive = publishing_receive(
                publish=publish, clock=self.clock, group=self.group, on_too_large=self._too_large
            )
        event: VoeventReceived | None = await self._receive(raw, intake)
        return event

    def _too_large(self, intake: str, ivorn: str, reason: str) -> None:
        self.metrics.packets.labels(intake, "unknown").inc()
        self.metrics.rejected.labels("too_large").inc()
        log.warning("packet rejected at intake", intake=intake, ivorn=ivorn, reason=reason)
