"""Routines' handlers run at once on PostgreSQL without deadlocking one another.

A night delivers a schedule version, an observation's progress and a cancellation for one
request at the same moment, each on its own topic and so in its own transaction. They used to
lock the request's rows in different orders (sequence then request, request then sequence)
and PostgreSQL broke the cycle after its deadlock timeout (1 s), failing one handler, which the
bus then retried: 7 deadlocks in the 200 packets of benchmarks/alert_to_slew.py. Every handler
now locks the request first.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import ObservationChanged, RequestChanged, ScheduleChanged
from pyros_common.contracts.events import ScheduledSequence, UnscheduledSequence
from pyros_common.db import Database
from pyros_common.db.models import Request as RequestRow
from pyros_common.db.models import Sequence as SequenceRow
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_routines import programs
from pyros_routines.handlers import Handlers
from sqlalchemy import select

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2025, 10, 20, 18, 0, tzinfo=dt.UTC)
ROUNDS = 30


def _alert(i: int) -> RequestChanged:
    doc: dict[str, Any] = copy.deepcopy(json.loads((ROOT / "examples" / "m31.json").read_text()))
    doc |= {"program": "GRB", "name": f"GRB {i}", "kind": "alert", "alert_id": f"lk{i:06d}"}
    return RequestChanged(
        request_id=f"lk{i:06d}-r1",
        action="submitted",
        state="submitted",
        kind="alert",
        program="GRB",
        owner="alerts",
        document=doc,
    ).stamped(producer="alerts", sent_at=NOW)


def _handlers(pg_db: Database, tmp_path: Path) -> Handlers:
    """Routines' handlers on this PostgreSQL database, with the program GRB."""
    clock = SimulatedClock(NOW)
    settings = Settings(data_dir=tmp_path, jwt_secret=SecretStr("k" * 40), database_url=pg_db.url)
    ctx = ServiceContext(bus=InProcessBus(clock=clock), clock=clock, settings=settings, db=pg_db)
    with pg_db.session() as s:
        programs.create_program(session=s, code="GRB", grade="A", quota_percent=100.0, now=NOW)
    return Handlers(ctx)


async def test_schedule_progress_and_cancellation_of_one_request_at_once(
    pg_db: Database, tmp_path: Path
) -> None:
    h = _handlers(pg_db, tmp_path)
    failures: list[BaseException] = []
    for i in range(ROUNDS):
        ev = _alert(i)
        await h.on_request(ev)
        rid, sid = ev.request_id, f"{ev.request_id}-s1"
        plan = ScheduleChanged(
            night=dt.date(2025, 10, 20),
            version=i + 1,
            night_start=NOW,
            night_end=NOW + dt.timedelta(hours=10),
            trigger="test",
            scheduled=[
                ScheduledSequence(
                    request_id=rid,
                    sequence_id=sid,
                    telescope_id="gft",
                    start=NOW,
                    end=NOW + dt.timedelta(minutes=8),
                    weight=1000.0,
                )
            ],
        ).stamped(producer="scheduler", sent_at=NOW)
        started = ObservationChanged(sequence_id=sid, request_id=rid, action="started").stamped(
            producer="observer", sent_at=NOW
        )
        cancel = RequestChanged(
            request_id=rid, action="cancelled", state="cancelled", kind="alert", reason="retracted"
        ).stamped(producer="alerts", sent_at=NOW)
        got = await asyncio.gather(
            h.on_schedule(plan), h.on_observation(started), h.on_request(cancel), return_exceptions=True
        )
        failures += [g for g in got if isinstance(g, BaseException)]
    print(f"\n{ROUNDS} rounds of schedule + started + cancel at once: {len(failures)} handler failures")
    assert failures == [], [str(f)[:300] for f in failures]
    with pg_db.session() as s:
        states = set(s.scalars(select(RequestRow.state).where(RequestRow.id.like("lk%"))))
        seq_states = set(s.scalars(select(SequenceRow.state).where(SequenceRow.request_id.like("lk%"))))
    # Whatever order they ran in, each request ends cancelled (the cancellation is final).
    assert states == {"cancelled"} and seq_states == {"cancelled"}


async def test_a_version_moves_only_the_sequences_it_changes(pg_db: Database, tmp_path: Path) -> None:
    """Placed: accepted -> scheduled; dropped: scheduled -> accepted; the request follows."""
    h = _handlers(pg_db, tmp_path)
    ev = _alert(0)
    await h.on_request(ev)
    rid, sid = ev.request_id, f"{ev.request_id}-s1"

    def version(n: int, placed: bool) -> ScheduleChanged:
        part: dict[str, Any] = {"request_id": rid, "sequence_id": sid}
        return ScheduleChanged(
            night=dt.date(2025, 10, 20),
            version=n,
            night_start=NOW,
            night_end=NOW + dt.timedelta(hours=10),
            trigger="test",
            scheduled=[
                ScheduledSequence(
                    **part, telescope_id="gft", start=NOW, end=NOW + dt.timedelta(minutes=8), weight=1.0
                )
            ]
            if placed
            else [],
            unscheduled=[] if placed else [UnscheduledSequence(**part, reason="no room")],
        ).stamped(producer="scheduler", sent_at=NOW)

    def states() -> tuple[str, str]:
        with pg_db.session() as s:
            return s.get_one(RequestRow, rid).state, s.get_one(SequenceRow, sid).state

    assert states() == ("accepted", "accepted")
    await h.on_schedule(version(1, placed=True))
    assert states() == ("scheduled", "scheduled")
    await h.on_schedule(version(2, placed=True))  # nothing moves: nothing locked, nothing written
    assert states() == ("scheduled", "scheduled")
    await h.on_schedule(version(3, placed=False))
    assert states() == ("accepted", "accepted")
