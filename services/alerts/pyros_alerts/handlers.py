"""Consumer of ``pyros.voevents.raw``: parse, match, persist, then publish alerts and requests."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pyros_common.bus.port import dead_letter
from pyros_common.clock import Clock
from pyros_common.contracts import AlertChanged, DeadLetter, Event, RequestChanged, VoeventReceived
from pyros_common.db import Database

from pyros_alerts import store
from pyros_alerts.domain import (
    AlertBook,
    IngestResult,
    MatchPolicy,
    RejectedPacket,
    StrategyError,
    build_request,
    parse_packet,
    strategy_for_alert,
)
from pyros_alerts.metrics import AlertsMetrics, reason_label

log = structlog.get_logger("pyros.alerts")

Publish = Callable[[Event, str | None], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """What happened to one received packet (also the line ``pyros alerts replay`` prints)."""

    ivorn: str
    accepted: bool
    reason: str
    action: str  # created | updated | retracted | ignored | duplicate | rejected
    alert_id: str | None = None
    mission: str | None = None
    ra_deg: float | None = None
    dec_deg: float | None = None
    error_deg: float | None = None
    trigger_time: datetime | None = None
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ivorn": self.ivorn,
            "accepted": self.accepted,
            "reason": self.reason,
            "alert_id": self.alert_id,
            "action": self.action,
            "mission": self.mission,
            "ra_deg": self.ra_deg,
            "dec_deg": self.dec_deg,
            "error_deg": self.error_deg,
            "trigger_time": None if self.trigger_time is None else _iso_ms(self.trigger_time),
            "request_id": self.request_id,
        }


def _iso_ms(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class VoeventHandler:
    """Turns each ``VoeventReceived`` into alert and request events, exactly once per event id."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        publish: Publish,
        metrics: AlertsMetrics,
        policy: MatchPolicy | None = None,
        group: str = "alerts",
    ) -> None:
        self.db = db
        self.clock = clock
        self.publish = publish
        self.metrics = metrics
        self.policy = policy or MatchPolicy()
        self.group = group
        self.book = AlertBook(policy=self.policy)

    def reload(self) -> None:
        """Rebuild the AlertBook from the database (at start, and after a failed transaction)."""
        with self.db.session() as s:
            self.book = AlertBook.from_alerts(store.load_alerts(s), policy=self.policy)

    async def handle(self, event: Event) -> None:
        """Bus handler for ``pyros.voevents.raw``."""
        if not isinstance(event, VoeventReceived):
            raise TypeError(f"unexpected event {type(event).__name__} on {VoeventReceived.topic}")
        await self.process(event)

    async def process(self, event: VoeventReceived) -> Outcome:
        try:
            return await self._process(event)
        except BaseException:
            # The transaction rolled back: the in-memory book must forget this packet too.
            self.reload()
            raise

    async def _process(self, event: VoeventReceived) -> Outcome:
        now = self.clock.now()
        raw = event.raw_bytes()  # the very bytes the intake judged (one verdict per packet)
        # Events published for this input get ids derived from its id, so a redelivery after a
        # crash republishes the same ids and consumers stay idempotent.
        ids = (uuid.uuid5(event.event_id, str(n)) for n in range(100))
        with self.db.session() as s:
            if not Database.mark_processed(s, self.group, str(event.event_id), now):
                return Outcome(event.ivorn, False, "event already processed", "duplicate")
            try:
                packet = parse_packet(raw)
            except RejectedPacket as exc:
                store.add_packet(
                    s,
                    ivorn=event.ivorn,
                    event_id=str(event.event_id),
                    alert_id=None,
                    intake=event.intake,
                    received_at=event.received_at,
                    mission="",
                    packet_type="",
                    role="",
                    action="rejected",
                    reason=exc.reason,
                    xml=event.xml,
                )
                dl = dead_letter(
                    topic=VoeventReceived.topic,
                    raw=raw,
                    key=event.ivorn.encode(),
                    reason=exc.reason,
                    group=self.group,
                    attempts=1,
                )
                await self.publish(
                    dl.model_copy(update={"event_id": next(ids)}), event.correlation_id or None
                )
                self.metrics.packets.labels(event.intake, "unknown").inc()
                self.metrics.rejected.labels(reason_label(exc.reason)).inc()
                log.warning("packet rejected", ivorn=event.ivorn, intake=event.intake, reason=exc.reason)
                return Outcome(event.ivorn, False, exc.reason, "rejected")

            self.metrics.packets.labels(event.intake, packet.mission).inc()
            result = self.book.ingest(packet, event.received_at)
            # The request first: it is on the alert's path to the telescope; the rows and the
            # alert event are not. Publishing inside the transaction is as before (the ids are
            # derived from this input's id: a redelivery after a failed commit republishes them).
            outgoing = self._events(s, result, event)
            requests = [e for e in outgoing if isinstance(e, RequestChanged)]
            for out in requests:
                await self.publish(out.model_copy(update={"event_id": next(ids)}), result.alert_id)
            store.add_packet(
                s,
                ivorn=packet.ivorn,
                event_id=str(event.event_id),
                alert_id=result.alert_id,
                intake=event.intake,
                received_at=event.received_at,
                mission=packet.mission,
                packet_type=str(packet.packet_type),
                role=packet.role,
                action=result.action,
                reason=result.reason,
                xml=event.xml,
            )
            if result.action != "duplicate":
                store.save_alert(s, result.alert, now=now)
            for other in outgoing:
                if not isinstance(other, RequestChanged):
                    await self.publish(other.model_copy(update={"event_id": next(ids)}), result.alert_id)
        if result.action == "created":
            self.metrics.created.inc()
        if outgoing:
            self.metrics.intake_to_publish.observe(
                max(0.0, (self.clock.now() - event.received_at).total_seconds())
            )
        log.info(
            "packet handled",
            ivorn=packet.ivorn,
            intake=event.intake,
            action=result.action,
            alert_id=result.alert_id,
            reason=result.reason,
            correlation_id=result.alert_id,
        )
        return Outcome(
            ivorn=packet.ivorn,
            accepted=True,
            reason=result.reason,
            action=result.action,
            alert_id=result.alert_id,
            mission=packet.mission,
            ra_deg=packet.ra_deg,
            dec_deg=packet.dec_deg,
            error_deg=packet.error_deg,
            trigger_time=packet.trigger_time,
            request_id=result.alert.request_id,
        )

    def _events(self, session: Any, result: IngestResult, event: VoeventReceived) -> list[Event]:
        """The alert and request events one ingest result calls for."""
        alert, packet = result.alert, result.packet
        out: list[Event] = []
        if result.action in ("created", "updated", "retracted") and alert.role == "observation":
            best = alert.best
            out.append(
                AlertChanged(
                    alert_id=alert.alert_id,
                    action=result.action,
                    event_key=alert.packets[0].event_key,
                    missions=list(alert.missions),
                    mission=packet.mission,
                    instrument=packet.instrument,
                    packet_type=str(packet.packet_type),
                    role="observation",
                    ivorn=packet.ivorn,
                    trigger_time=alert.trigger_time,
                    ra_deg=None if best is None else best.ra_deg,
                    dec_deg=None if best is None else best.dec_deg,
                    error_deg=None if best is None else best.error_deg,
                    is_grb=alert.is_grb,
                    retracted=alert.status == "retracted",
                    packet_ivorns=list(alert.ivorns),
                    request_id=alert.request_id,
                )
            )
        if result.action == "retracted" and alert.request_id is not None:
            out.append(
                RequestChanged(
                    request_id=alert.request_id,
                    action="cancelled",
                    state="cancelled",
                    kind="alert",
                    owner="alerts",
                    reason=f"alert {alert.alert_id} retracted by {packet.ivorn}",
                )
            )
        if result.request_needed and result.request_id is not None:
            revision = alert.request_revision
            try:
                strategy = strategy_for_alert(store.active_strategies(session), alert)
                document = build_request(alert, strategy, received_at=event.received_at)
            except StrategyError as exc:
                log.error("no request built", alert_id=alert.alert_id, reason=str(exc))
                return out
            out.append(
                RequestChanged(
                    request_id=result.request_id,
                    # The first position submits the request; a better one revises the same request.
                    action="submitted" if revision <= 1 else "changed",
                    state="submitted",
                    kind="alert",
                    program=strategy.program,
                    owner="alerts",
                    reason=f"strategy {strategy.name}"
                    + (
                        "" if revision <= 1 else f", revision {revision}: better position from {packet.ivorn}"
                    ),
                    document=document,
                )
            )
        return out


__all__ = ["DeadLetter", "Outcome", "VoeventHandler"]
