"""Runs one or several services: prerequisites with back-off, lifecycle, heartbeat, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from prometheus_client import Gauge
from pyros_common.bus.kafka import KafkaBus, KafkaUnreachable, check_kafka
from pyros_common.contracts import Heartbeat
from pyros_common.db import DatabaseNotMigrated, DatabaseUnreachable
from pyros_common.runtime.service import LifecycleState, Service, ServiceContext

log = structlog.get_logger("pyros.runtime")


class Prerequisite(RuntimeError):
    """A missing prerequisite, with the sentence that tells the operator what to do."""

    def __init__(self, message: str, *, what: str) -> None:
        super().__init__(message)
        self.what = what


class ServiceHost:
    """Starts services on one bus once Kafka and the database are there; publishes heartbeats."""

    def __init__(self, ctx: ServiceContext, services: list[Service]) -> None:
        self.ctx = ctx
        self.services = services
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._consumer_faulted: set[str] = set()  # services FAULT because a consumer of theirs is down
        self.state_gauge = Gauge(
            "pyros_service_state",
            "1 for the current lifecycle state.",
            ["service", "state"],
            registry=ctx.registry,
        )
        self.heartbeat_gauge = Gauge(
            "pyros_heartbeat_timestamp_seconds",
            "Last heartbeat sent (Unix time) [s].",
            ["service"],
            registry=ctx.registry,
        )
        for s in services:
            self._set_state(s, LifecycleState.STANDBY, "waiting for prerequisites")

    # --- prerequisites ----------------------------------------------------------------

    async def check_prerequisites(self) -> None:
        bus = self.ctx.bus
        if isinstance(bus, KafkaBus):
            try:
                await check_kafka(bus.bootstrap)
            except KafkaUnreachable as exc:
                raise Prerequisite(
                    f"{exc}: start it with `scripts/kafka.sh start` (or docker-compose up kafka), "
                    f"or point PYROS_KAFKA_BOOTSTRAP at a running broker",
                    what=f"Kafka at {bus.bootstrap}",
                ) from exc
        if any(s.needs_db for s in self.services) and self.ctx.db is not None:
            db = self.ctx.db
            try:
                await asyncio.to_thread(db.check)
            except DatabaseUnreachable as exc:
                raise Prerequisite(
                    f"{exc}: start PostgreSQL with `scripts/postgres.sh start`, or set PYROS_DATABASE_URL",
                    what="the database",
                ) from exc
            except DatabaseNotMigrated as exc:
                raise Prerequisite(f"{exc}: run `pyros db upgrade`", what="database migrations") from exc

    async def wait_for_prerequisites(self) -> None:
        delay, attempt = 1.0, 0
        while True:
            attempt += 1
            try:
                await self.check_prerequisites()
                return
            except Prerequisite as exc:
                if attempt == 1:
                    log.error(str(exc))
                else:
                    log.warning("still waiting", waiting_for=exc.what, attempt=attempt, retry_in_s=delay)
                for s in self.services:
                    s.reason = str(exc)
                await self.ctx.clock.sleep(delay)
                delay = min(delay * 2, self.ctx.settings.startup_retry_max_s)

    # --- lifecycle --------------------------------------------------------------------

    def _set_state(self, service: Service, state: LifecycleState, reason: str = "") -> None:
        service.state = state
        service.reason = reason
        for st in LifecycleState:
            self.state_gauge.labels(service.name, st.value).set(1 if st is state else 0)

    def consumer_health(self, group: str, fault: str | None) -> None:
        """The bus says a consumer of ``group`` is down (``fault``) or back (None): its service
        turns FAULT with the reason, and ENABLED again once every consumer of it runs."""
        for s in self.services:
            if s.group != group:
                continue
            if fault is not None and s.state is not LifecycleState.STANDBY:
                if s.state is not LifecycleState.FAULT:
                    log.error("service fault", service=s.name, reason=fault)
                self._set_state(s, LifecycleState.FAULT, f"consumer down: {fault}")
                self._consumer_faulted.add(s.name)
            elif fault is None and s.name in self._consumer_faulted:
                self._consumer_faulted.discard(s.name)
                self._set_state(s, LifecycleState.ENABLED, "")
                log.info("service recovered", service=s.name)

    async def start(self) -> None:
        await self.wait_for_prerequisites()
        for s in self.services:
            for topic, handler in s.subscriptions():
                self.ctx.bus.subscribe(topic, s.group, handler)
        listeners = getattr(self.ctx.bus, "health_listeners", None)
        if isinstance(listeners, list):
            listeners.append(self.consumer_health)
        await self.ctx.bus.start()
        for s in self.services:
            try:
                await s.on_start()
            except Exception as exc:
                log.exception("service failed to start", service=s.name)
                self._set_state(s, LifecycleState.FAULT, f"start failed: {exc!r}")
                continue
            self._set_state(s, LifecycleState.ENABLED, "")
            log.info("service enabled", service=s.name)
        await self.beat()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))

    async def beat(self) -> None:
        now = self.ctx.clock.now()
        for s in self.services:
            hb = Heartbeat(
                service=s.name,
                state=s.state.value,
                reason=s.reason,
                uptime_s=max(0.0, self.ctx.clock.monotonic() - s.started_at),
                telescope_id=self.ctx.settings.telescope_id,
            ).stamped(producer=s.name, sent_at=now)
            try:
                await self.ctx.bus.publish(Heartbeat.topic, hb)
                self.heartbeat_gauge.labels(s.name).set(now.timestamp())
            except Exception as exc:  # the heartbeat must never kill a service
                log.warning("heartbeat not sent", service=s.name, error=repr(exc))

    async def _heartbeat_loop(self) -> None:
        while not self._stopped.is_set():
            await self.ctx.clock.sleep(self.ctx.settings.heartbeat_s)
            await self.beat()

    async def stop(self) -> None:
        """Stop background work, let the bus finish the in-flight event and commit, then disconnect."""
        self._stopped.set()
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for s in self.services:
            with contextlib.suppress(Exception):
                await s.on_stop()
        for s in self.services:
            self._set_state(s, LifecycleState.STANDBY, "stopped")
        with contextlib.suppress(Exception):
            await self.beat()
        await self.ctx.bus.stop()
        log.info("stopped", services=[s.name for s in self.services])
