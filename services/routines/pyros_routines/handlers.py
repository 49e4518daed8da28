"""Routines' consumers: alert requests, observation progress and schedules move request states.

Idempotent on the event id (``processed_events``), effect and mark in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from pyros_common.contracts import Event, ObservationChanged, RequestChanged, ScheduleChanged
from pyros_common.db.models import Request as RequestRow
from pyros_common.db.models import Sequence as SequenceRow
from pyros_common.domain.requests.states import TERMINAL, State
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import ServiceContext
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from starlette.concurrency import run_in_threadpool

from pyros_routines import admission, requests
from pyros_routines.deps import PRODUCER, publish

log = structlog.get_logger("pyros.routines")
GROUP = "routines"

_OBSERVATION_TARGET = {
    "started": State.EXECUTING,
    "completed": State.COMPLETED,
    "failed": State.FAILED,
    "interrupted": State.ACCEPTED,
}


class Handlers:
    """The event handlers of routines; dependencies come in through the context."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def _once(self, event: Event, fn: Callable[[Session], RequestChanged | None]) -> RequestChanged | None:
        db = self.ctx.db
        assert db is not None
        with db.session() as s:
            if not db.mark_processed(s, GROUP, str(event.event_id), self.ctx.clock.now()):
                return None
            return fn(s)

    async def on_request(self, event: Event) -> None:
        """Routines is the one admission gate: alert requests announced on the bus are checked
        here like any other (night, visibility, quota), and the verdict is published."""
        assert isinstance(event, RequestChanged)
        if event.producer == PRODUCER:
            return
        site = get_site(self.ctx.settings.site)
        now = self.ctx.clock.now()

        def effect(s: Session) -> RequestChanged | None:
            if event.action in ("submitted", "changed"):
                return admission.admit_foreign_request(session=s, event=event, site=site, now=now)
            if event.action != "cancelled":
                return None
            row = s.get(RequestRow, event.request_id, with_for_update=True)  # requests.lock_requests
            if row is None:
                return None
            if State(row.state) in TERMINAL:
                return None
            row.reason = event.reason or row.reason
            requests.cancel_row(session=s, row=row, now=now)
            return requests.changed_event_with_grade(session=s, row=row, action="cancelled")

        out = await run_in_threadpool(self._once, event, effect)
        if out is not None:
            await publish(self.ctx, out.model_copy(update={"correlation_id": event.correlation_id}))

    async def on_observation(self, event: Event) -> None:
        """Sequence progress: completed time is used, failed time goes back; the request follows."""
        assert isinstance(event, ObservationChanged)
        target = _OBSERVATION_TARGET.get(event.action)
        if target is None:
            return
        now = self.ctx.clock.now()

        def effect(s: Session) -> RequestChanged | None:
            # The request first, locked (requests.lock_requests), with its sequences.
            row = s.scalar(
                select(RequestRow)
                .where(RequestRow.id == event.request_id)
                .options(selectinload(RequestRow.sequences))
                .with_for_update()
            )
            seq = next((q for q in row.sequences if q.id == event.sequence_id), None) if row else None
            if row is None or seq is None or not requests.set_state(row=seq, target=target):
                return None
            if target is State.COMPLETED:
                requests.give_back(session=s, sequence_ids=[seq.id], used=True)
            elif target is State.FAILED:
                requests.give_back(session=s, sequence_ids=[seq.id])
            if target is State.EXECUTING:
                requests.set_state(row=row, target=State.EXECUTING)
                return None
            action = requests.settle_request(row=row, now=now)
            if action is None:
                return None
            row.reason = event.reason or row.reason
            return requests.changed_event(row=row, action=action)

        out = await run_in_threadpool(self._once, event, effect)
        if out is not None:
            await publish(self.ctx, out)

    async def on_schedule(self, event: Event) -> None:
        """A new schedule version: its sequences become scheduled, those it dropped go back to
        accepted; each request follows its sequences (no event: the scheduler already knows)."""
        assert isinstance(event, ScheduleChanged)
        placed = {q.sequence_id for q in event.scheduled}
        dropped = {q.sequence_id for q in event.unscheduled}

        def moved(sid: str, state: str) -> State | None:
            """The state this version moves a sequence to, None if it stays."""
            if sid in placed and state == State.ACCEPTED:
                return State.SCHEDULED
            if sid in dropped and state == State.SCHEDULED:
                return State.ACCEPTED
            return None

        def effect(s: Session) -> RequestChanged | None:
            # A version names every sequence of the night, most of them unchanged: only the
            # requests whose sequences move are locked (requests.lock_requests), then read again.
            rows = s.execute(
                select(SequenceRow.request_id, SequenceRow.id, SequenceRow.state).where(
                    SequenceRow.id.in_(placed | dropped)
                )
            )
            moving = {rid for rid, sid, state in rows if moved(sid, state) is not None}
            if not moving:
                return None
            requests.lock_requests(session=s, request_ids=moving)
            touched: set[str] = set()
            for seq in s.scalars(select(SequenceRow).where(SequenceRow.request_id.in_(moving))):
                target = moved(seq.id, seq.state)
                if target is None:
                    continue
                requests.set_state(row=seq, target=target)
                touched.add(seq.request_id)
            for rid in touched:
                req = s.scalar(
                    select(RequestRow).where(RequestRow.id == rid).options(selectinload(RequestRow.sequences))
                )
                if req is None:
                    continue
                any_scheduled = any(q.state == State.SCHEDULED for q in req.sequences)
                if any_scheduled and req.state == State.ACCEPTED:
                    requests.set_state(row=req, target=State.SCHEDULED)
                elif not any_scheduled and req.state == State.SCHEDULED:
                    requests.set_state(row=req, target=State.ACCEPTED)
            return None

        if placed or dropped:
            await run_in_threadpool(self._once, event, effect)
