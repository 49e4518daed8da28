"""Event consumers: requests, alerts, conditions and observations in; schedule versions out.

Each handler is idempotent on the event id (``Database.mark_processed`` in the same
transaction as the stored schedule version), changes the book, and publishes the new version
on ``pyros.schedule`` once it is stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import structlog
from pydantic import ValidationError
from pyros_common.clock import Clock, hold
from pyros_common.contracts import (
    AlertChanged,
    Event,
    ObservationChanged,
    RequestChanged,
    ScheduleChanged,
    ScheduledSequence,
    SystemChanged,
    UnscheduledSequence,
)
from pyros_common.db import Database
from pyros_common.db.models import PoolRequest, Schedule
from pyros_common.domain.requests import Request, RequestContent
from pyros_common.domain.requests.document import RequestDocument
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyros_scheduler.book import NightBook, Version

log = structlog.get_logger("pyros.scheduler")

ROUTINES = "routines"
ADD = {"accepted", "changed"}
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
        self._improving: set[asyncio.Task[None]] = set()

    async def _apply(
        self,
        event: Event | None,
        change: Callable[[dt.datetime, Session], Version | None],
    ) -> Version | None:
        async with self.lock:
            now = self.clock.now()
            events: list[ScheduleChanged] = []
            version = None
            with self.db.session() as s:
                if event is not None and not Database.mark_processed(s, self.group, str(event.event_id), now):
                    return None
                version = change(now, s)
                if version is not None:
                    events = schedule_events(version, store(s, version, now))
                    self.versions.append(version)
            for ev in events:
                await self.publish(ev)
        if version is not None and self.book.wants_improvement(version):
            self._improve_later(version)
        return version

    def _improve_later(self, version: Version) -> None:
        """After a fast plan is out, look for a better one in a worker thread (CP-SAT or a
        rebuild of the future); published as a new version if the plan is still current."""
        task = asyncio.create_task(self._improve(version), name="scheduler-improve")
        self._improving.add(task)
        task.add_done_callback(self._improving.discard)

    async def _improve(self, version: Version) -> None:
        try:
            # A virtual night (pyros up --simulate) waits for it like for any thread work.
            async with hold(self.clock):
                better = await asyncio.to_thread(self.book.improve, version)
        except Exception:
            log.exception("plan improvement failed", trigger=version.trigger)
            return
        if better is not None:
            await self._apply(None, lambda _now, _s: self.book.adopt(version, better))

    async def idle(self) -> None:
        """Wait for the improvements under way (tests, shutdown)."""
        while self._improving:
            await asyncio.gather(*list(self._improving), return_exceptions=True)

    async def plan(self, trigger: str) -> None:
        """Plan the night in progress (or the next one) from scratch."""
        await self._apply(None, lambda now, _s: self.book.replan(now, trigger, full=True))

    async def roll_over(self) -> None:
        await self._apply(None, lambda now, _s: self.book.roll_over(now))

    async def on_request(self, event: Event) -> None:
        """Plan only what routines accepted: its accepted and changed requests join the pool (kept
        in the scheduler's own table), its final verdicts leave it."""
        assert isinstance(event, RequestChanged)
        if event.producer != ROUTINES:
            return  # alerts' submissions reach routines first: the one admission gate

        def change(now: dt.datetime, session: Session) -> Version | None:
            if event.action in DROP:
                pool_remove(session, event.request_id)
                if not self.book.remove(event.request_id):
                    return None
                return self.book.replan(now, f"request {event.request_id} {event.action}")
            if event.action not in ADD or event.document is None:
                return None
            req = as_request(event.document, owner=event.owner, request_id=event.request_id)
            pool_put(session, event, now)
            self.book.add(req, now, grade=event.grade)
            alert = event.kind == "alert"
            what = "alert request" if alert else "request"
            # An alert is published at once (heuristic, milliseconds); improvements follow.
            return self.book.replan(now, f"{what} {event.request_id} {event.action}", fast=alert)

        await self._apply(event, change)

    async def on_alert(self, event: Event) -> None:
        assert isinstance(event, AlertChanged)
        if event.action != "retracted" and not event.retracted:
            return  # no effect, so no transaction (it ran beside routines' admission of the alert)

        def change(now: dt.datetime, session: Session) -> Version | None:
            gone = self.book.remove_alert(event.alert_id, event.request_id)
            for rid in gone:
                pool_remove(session, rid)
            if not gone:
                return None
            return self.book.replan(now, f"alert {event.alert_id} retracted")

        await self._apply(event, change)

    async def on_system(self, event: Event) -> None:
        """majordome owns the night: its states tell the scheduler when to plan and to hold.

        day (after closing) and dusk roll over to the night they announce and plan it; paused
        holds the telescope (the running sequence is interrupted, nothing planned in the hold);
        running with ``replan`` (resumed) plans again from now.
        """
        assert isinstance(event, SystemChanged)

        def change(now: dt.datetime, _s: Session) -> Version | None:
            if event.state in ("day", "dusk"):
                rolled = self.book.roll_over(now)
                if rolled is not None or not event.replan:
                    return rolled
                return self.book.replan(now, f"majordome: {event.reason or event.state}")
            if event.state == "paused":
                return self.book.unsafe(now)
            if event.state == "running" and event.replan:
                v = self.book.safe(now)
                return v if v is not None else self.book.replan(now, f"majordome: {event.reason}")
            return None

        if event.state in ("day", "dusk", "paused") or (event.state == "running" and event.replan):
            await self._apply(event, change)

    async def on_observation(self, event: Event) -> None:
        assert isinstance(event, ObservationChanged)
        if event.action not in ("started", "completed", "failed", "interrupted"):
            return  # an image's progress changes nothing here: no transaction

        def change(now: dt.datetime, _s: Session) -> Version | None:
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


def as_request(document: RequestDocument, *, owner: str, request_id: str) -> Request:
    """The domain request of an accepted document (its sequences carry routines' ids)."""
    fields = {k: getattr(document, k) for k in RequestContent.model_fields}
    return Request.model_validate({**fields, "user": owner or "unknown", "id": request_id})


def pool_put(session: Session, event: RequestChanged, now: dt.datetime) -> None:
    """Keep the accepted request in the scheduler's own table (its cold start)."""
    assert event.document is not None
    row = session.get(PoolRequest, event.request_id) or PoolRequest(request_id=event.request_id)
    row.owner = event.owner
    row.program_code = event.program or event.document.program
    row.grade = event.grade
    row.state = event.state
    row.document = event.document.model_dump(mode="json", by_alias=True)
    row.updated_at = now
    session.add(row)


def pool_remove(session: Session, request_id: str) -> None:
    row = session.get(PoolRequest, request_id)
    if row is not None:
        session.delete(row)


def load_pool(db: Database) -> list[tuple[Request, str | None]]:
    """The requests of the scheduler's own pool table, with their program grades."""
    out: list[tuple[Request, str | None]] = []
    with db.session() as s:
        for row in s.scalars(select(PoolRequest)):
            try:
                doc = RequestDocument.model_validate(row.document)
                out.append((as_request(doc, owner=row.owner, request_id=row.request_id), row.grade))
            except ValidationError as exc:
                log.error("pool request not loaded", request_id=row.request_id, error=str(exc))
    return out
