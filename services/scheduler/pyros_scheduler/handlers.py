"""Event consumers: requests, alerts, conditions and observations in; schedule versions out.

Each handler is idempotent on the event id (``Database.mark_processed`` in the same
transaction as the stored schedule version), changes the book, and publishes the new version
on ``pyros.schedule`` once it is stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pydantic import ValidationError
from pyros_common.clock import Clock
from pyros_common.contracts import (
    AlertChanged,
    ConditionsChanged,
    Event,
    ObservationChanged,
    RequestChanged,
    ScheduleChanged,
    ScheduledSequence,
    UnscheduledSequence,
)
from pyros_common.db import Database
from pyros_common.db.models import Schedule
from pyros_common.domain.requests.document import import_document
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyros_scheduler.book import NightBook, Version

log = structlog.get_logger("pyros.scheduler")

ADD = {"submitted", "accepted", "changed"}
DROP = {"cancelled", "rejected", "completed", "failed"}


def schedule_events(version: Version, numbers: dict[str, int]) -> list[ScheduleChanged]:
    """One ScheduleChanged per telescope (its own sequences, every left-out one)."""
    plan = version.plan
    unscheduled = [
        UnscheduledSequence(
            request_id=u.request_id,
            sequence_id=u.seq_id,
            reason=u.reason
            if not u.detail or u.reason.startswith("displaced")
            else f"{u.reason} ({u.detail})",
        )
        for u in plan.unscheduled
    ]
    out = []
    for tel in plan.telescopes:
        out.append(
            ScheduleChanged(
                night=plan.night,
                version=numbers[tel],
                night_start=plan.dusk,
                night_end=plan.dawn,
                trigger=version.trigger,
                scheduled=[
                    ScheduledSequence(
                        request_id=s.request_id,
                        sequence_id=s.seq_id,
                        telescope_id=s.telescope,
                        start=s.start,
                        end=s.end,
                        weight=s.weight,
                    )
                    for s in plan.scheduled
                    if s.telescope == tel
                ],
                unscheduled=unscheduled,
                interrupted=version.interrupted,
                objective=plan.objective,
                solver=plan.solver,
                telescope_id=tel,
            )
        )
    return out


def store(session: Session, version: Version, now: dt.datetime) -> dict[str, int]:
    """Store the version for every telescope; returns the version number of each."""
    plan = version.plan
    numbers: dict[str, int] = {}
    doc = plan.to_json()
    for tel in plan.telescopes:
        last = session.scalar(
            select(func.max(Schedule.version)).where(
                Schedule.telescope_id == tel, Schedule.night == plan.night
            )
        )
        n = (last or 0) + 1
        numbers[tel] = n
        session.add(
            Schedule(
                telescope_id=tel,
                night=plan.night,
                version=n,
                trigger=version.trigger[:255],
                created_at=now,
                objective=plan.objective,
                solver=plan.solver[:64],
                document=doc
                | {
                    "version": n,
                    "telescope": tel,
                    "trigger": version.trigger,
                    "interrupted_id": version.interrupted,
                    "scheduled_ids": [
                        {"request_id": s.request_id, "sequence_id": s.seq_id} for s in plan.scheduled
                    ],
                },
            )
        )
    return numbers


class SchedulerHandlers:
    """The scheduler's consumers; one lock keeps the book consistent between them."""

    def __init__(
        self,
        *,
        book: NightBook,
        db: Database,
        clock: Clock,
        publish: Callable[[Event], Awaitable[None]],
        group: str = "scheduler",
    ) -> None:
        self.book = book
        self.db = db
        self.clock = clock
        self.publish = publish
        self.group = group
        self.lock = asyncio.Lock()
        self.versions: list[Version] = []

    async def _apply(self, event: Event | None, change: Callable[[dt.datetime], Version | None]) -> None:
        async with self.lock:
            now = self.clock.now()
            events: list[ScheduleChanged] = []
            with self.db.session() as s:
                if event is not None and not Database.mark_processed(s, self.group, str(event.event_id), now):
                    return
                version = change(now)
                if version is not None:
                    events = schedule_events(version, store(s, version, now))
                    self.versions.append(version)
            for ev in events:
                await self.publish(ev)

    async def plan(self, trigger: str) -> None:
        """Plan the night in progress (or the next one) from scratch."""
        await self._apply(None, lambda now: self.book.replan(now, trigger, full=True))

    async def roll_over(self) -> None:
        await self._apply(None, self.book.roll_over)

    async def on_request(self, event: Event) -> None:
        assert isinstance(event, RequestChanged)

        def change(now: dt.datetime) -> Version | None:
            if event.action in DROP:
                if not self.book.remove(event.request_id):
                    return None
                return self.book.replan(now, f"request {event.request_id} {event.action}")
            if event.action not in ADD or event.document is None:
                return None
            if event.kind == "routine" and event.action == "submitted":
                return None  # routines has not accepted it yet (visibility, quota)
            try:
                req = import_document(event.document, user=event.owner or "unknown", id=event.request_id)
            except ValidationError as exc:
                log.error("request document refused", request_id=event.request_id, error=str(exc))
                return None
            self.book.add(req, now)
            what = "alert request" if event.kind == "alert" else "request"
            return self.book.replan(now, f"{what} {event.request_id} {event.action}")

        await self._apply(event, change)

    async def on_alert(self, event: Event) -> None:
        assert isinstance(event, AlertChanged)

        def change(now: dt.datetime) -> Version | None:
            if event.action != "retracted" and not event.retracted:
                return None
            if not self.book.remove_alert(event.alert_id, event.request_id):
                return None
            return self.book.replan(now, f"alert {event.alert_id} retracted")

        await self._apply(event, change)

    async def on_conditions(self, event: Event) -> None:
        assert isinstance(event, ConditionsChanged)

        def change(now: dt.datetime) -> Version | None:
            if not event.safe:
                return self.book.unsafe(now)
            return self.book.safe(now)

        await self._apply(event, change)

    async def on_observation(self, event: Event) -> None:
        assert isinstance(event, ObservationChanged)

        def change(now: dt.datetime) -> Version | None:
            if event.action == "started":
                self.book.started(event.telescope_id, event.sequence_id)
            elif event.action == "completed":
                self.book.finished(event.sequence_id, ok=True)
            elif event.action == "failed":
                self.book.finished(event.sequence_id, ok=False)
                return self.book.replan(now, f"sequence {event.sequence_id} failed")
            elif event.action == "interrupted":
                self.book.executing = {t: s for t, s in self.book.executing.items() if s != event.sequence_id}
            return None

        await self._apply(event, change)


def load_requests(db: Database) -> list[dict[str, Any]]:
    """Requests waiting for a schedule, as stored by routines (read only)."""
    from pyros_common.db.models import Request as RequestRow

    with db.session() as s:
        rows = s.scalars(
            select(RequestRow).where(RequestRow.state.in_(("accepted", "scheduled", "executing")))
        ).all()
        return [{"id": r.id, "owner": r.owner, "document": r.document} for r in rows]
