"""Scheduler service on the in-process bus with a simulated clock: events in, versions out."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pyros_common.bus import InProcessBus
from pyros_common.bus.port import decode
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import ObservationChanged, RequestChanged, ScheduleChanged
from pyros_common.db import Database
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_scheduler.app import SchedulerService

UTC = dt.UTC
# Night of 2026-12-15 at San Pedro Mártir: dusk 02:08 UTC, dawn 13:07 UTC (Dec 16).
MIDNIGHT = dt.datetime(2026, 12, 16, 6, 0, tzinfo=UTC)


def document(name: str, ra: float, dec: float, **kw: Any) -> dict[str, Any]:
    seq = kw.pop("sequence", {})
    return {
        "schema": "pyros.request/1",
        "name": name,
        "program": kw.pop("program", "P1"),
        "sequences": [
            {
                "name": "s1",
                "target": {"name": name, "ra_deg": ra, "dec_deg": dec},
                "date": "2026-12-15",
                "albums": [{"detector": "VIS", "plans": [{"filter": "r", "exposure_s": 120, "count": 8}]}],
                **seq,
            }
        ],
        **kw,
    }


def submitted(rid: str, doc: dict[str, Any], *, kind: str = "routine") -> RequestChanged:
    """Routines' verdict: the request accepted (the scheduler plans nothing else)."""
    return RequestChanged(
        request_id=rid,
        action="accepted",
        state="accepted",
        kind=kind,  # type: ignore[arg-type]
        program=doc["program"],
        owner="ana",
        document=doc,
    )


@dataclass
class Rig:
    bus: InProcessBus
    clock: SimulatedClock
    svc: SchedulerService

    def versions(self) -> list[ScheduleChanged]:
        out = [decode(ScheduleChanged.topic, raw) for raw in self.bus.log[ScheduleChanged.topic]]
        assert all(isinstance(e, ScheduleChanged) for e in out)
        return out  # type: ignore[return-value]

    def last(self) -> ScheduleChanged:
        return self.versions()[-1]

    async def send(self, event: Any, producer: str | None = None) -> None:
        """Publish as its real producer would: request verdicts come from routines."""
        who = producer or ("routines" if isinstance(event, RequestChanged) else "test")
        await self.bus.publish(type(event).topic, event.stamped(producer=who, sent_at=self.clock.now()))
        await self.bus.drain()


async def start_rig(tmp_path: Path, clock: SimulatedClock | None = None) -> Rig:
    db = Database(f"sqlite:///{tmp_path / 'sched.db'}")
    db.upgrade()
    clock = clock or SimulatedClock(MIDNIGHT)
    bus = InProcessBus(clock=clock)
    ctx = ServiceContext(bus=bus, clock=clock, settings=Settings(), db=db)
    svc = SchedulerService(ctx, night_loop=False, auth_dependency=lambda: None)
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    await bus.start()
    await svc.on_start()
    await bus.drain()
    return Rig(bus, clock, svc)


async def stop_rig(rig: Rig) -> None:
    await rig.svc.on_stop()
    await rig.bus.stop()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await start_rig(tmp_path)
    yield r
    await stop_rig(r)


def ids(ev: ScheduleChanged) -> list[str]:
    return [s.sequence_id for s in ev.scheduled]


async def test_a_request_in_gives_a_schedule_out(rig: Rig) -> None:
    first = rig.last()
    assert first.night == dt.date(2026, 12, 15) and first.version == 1 and first.scheduled == []
    await rig.send(submitted("r1", document("M1", 83.63, 22.01)))
    ev = rig.last()
    assert ev.version == 2 and ids(ev) == ["r1/s1"]
    s = ev.scheduled[0]
    assert s.start >= MIDNIGHT and s.end <= ev.night_end and s.telescope_id == "gft"
    assert ev.trigger.startswith("request r1")
    # a duplicate delivery changes nothing
    n = len(rig.versions())
    await rig.bus.publish_raw(RequestChanged.topic, rig.bus.log["pyros.requests"][-1])
    await rig.bus.drain()
    assert len(rig.versions()) == n


async def test_alert_preempts_and_the_running_sequence_is_interrupted(rig: Rig) -> None:
    await rig.send(submitted("r1", document("M1", 83.63, 22.01)))
    running = rig.last().scheduled[0]
    rig.clock.set(running.start + dt.timedelta(minutes=3))
    await rig.send(ObservationChanged(sequence_id="r1/s1", request_id="r1", action="started"))
    alert = document(
        "GRB 261216A",
        95.3,
        14.8,
        program="GRB",
        kind="alert",
        alert_id="ivo://svom#sb1",
        priority=80,
        valid_from="2026-12-16T06:00:00Z",
        valid_until="2026-12-16T10:00:00Z",
    )
    await rig.send(submitted("a1", alert, kind="alert"))
    ev = rig.last()
    assert ev.interrupted == "r1/s1"
    grb = next(s for s in ev.scheduled if s.sequence_id == "a1/s1")
    assert grb.start < running.end  # it did not wait for the routine sequence
    assert grb.weight >= 1000
    reasons = {u.sequence_id: u.reason for u in ev.unscheduled}
    assert reasons["r1/s1"].startswith("interrupted by GRB 261216A")


async def test_a_cancelled_request_disappears_in_the_next_version(rig: Rig) -> None:
    await rig.send(submitted("r1", document("M1", 83.63, 22.01)))
    await rig.send(submitted("r2", document("M42", 83.82, -5.39)))
    assert sorted(ids(rig.last())) == ["r1/s1", "r2/s1"]
    before = rig.last().version
    await rig.send(RequestChanged(request_id="r2", action="cancelled", state="cancelled", reason="owner"))
    ev = rig.last()
    assert ev.version == before + 1 and ids(ev) == ["r1/s1"]
    assert all(u.sequence_id != "r2/s1" for u in ev.unscheduled)


async def test_carry_over_to_the_next_night_and_no_longer_visible(rig: Rig) -> None:
    rig.clock.set(dt.datetime(2026, 12, 16, 9, 0, tzinfo=UTC))  # both targets have set
    # visible both nights until ~08:00 UTC: carried over
    await rig.send(
        submitted("late", document("Andromeda-ish", 20.0, 30.0, sequence={"carry_over_nights": 2}))
    )
    # night 1 only: the Moon comes within 10° of it on night 2
    moon = {"carry_over_nights": 2, "constraints": {"min_moon_separation_deg": 10}}
    await rig.send(submitted("moon", document("near the Moon", 348.0, 4.0, sequence=moon)))
    ev = rig.last()
    assert ids(ev) == []
    reasons = {u.sequence_id: u.reason for u in ev.unscheduled}
    assert reasons["late/s1"].startswith("no longer visible") and reasons["moon/s1"].startswith(
        "no longer visible"
    )

    rig.clock.set(dt.datetime(2026, 12, 16, 20, 0, tzinfo=UTC))  # the next afternoon
    await rig.svc.handlers.roll_over()
    await rig.bus.drain()
    ev = rig.last()
    assert ev.night == dt.date(2026, 12, 16) and ev.version == 1
    assert ids(ev) == ["late/s1"]
    reasons = {u.sequence_id: u.reason for u in ev.unscheduled}
    assert reasons["moon/s1"].startswith("no longer visible")
    assert "moon/s1" in rig.svc.book.dead
    # the carried sequence weighs more than on its first night
    assert ev.scheduled[0].weight > 1.0


async def test_api_serves_current_previous_and_next(rig: Rig) -> None:
    await rig.send(submitted("r1", document("M1", 83.63, 22.01)))
    await rig.send(submitted("r2", document("M42", 83.82, -5.39)))
    app = FastAPI()
    app.include_router(rig.svc.router(), prefix="/api/v1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        cur = (await client.get("/api/v1/schedule")).json()
        assert cur["version"] == 3 and cur["current"] and cur["next"] is None
        assert cur["previous"]["version"] == 2
        assert len(cur["schedule"]["scheduled"]) == 2
        prev = (await client.get(cur["previous"]["href"])).json()
        assert prev["version"] == 2 and prev["next"]["version"] == 3
        assert len(prev["schedule"]["scheduled"]) == 1
        assert (await client.get("/api/v1/schedule?night=2026-12-15&version=9")).status_code == 404


def alert_document() -> dict[str, Any]:
    return document(
        "GRB 261216A",
        95.3,
        14.8,
        program="GRB",
        kind="alert",
        alert_id="svom-sb1",
        priority=80,
        valid_from="2026-12-16T06:00:00Z",
        valid_until="2026-12-16T10:00:00Z",
    )


async def test_an_alert_submission_waits_for_routines_verdict(rig: Rig) -> None:
    """Routines is the one admission gate: alerts' own 'submitted' is not planned."""
    before = len(rig.versions())
    ev = RequestChanged(
        request_id="a1",
        action="submitted",
        state="submitted",
        kind="alert",
        program="GRB",
        owner="alerts",
        document=alert_document(),
    )
    await rig.send(ev, producer="alerts")
    assert len(rig.versions()) == before
    await rig.send(submitted("a1", alert_document(), kind="alert"))
    assert "a1/s1" in ids(rig.last())


async def test_plans_with_routines_sequence_ids(rig: Rig) -> None:
    doc = document("M1", 83.63, 22.01, sequence={"id": "r1-s1"})
    await rig.send(submitted("r1", doc))
    assert ids(rig.last()) == ["r1-s1"]


async def test_a_restart_keeps_alert_requests_in_the_plan(tmp_path: Path) -> None:
    """Cold start from the scheduler's own pool table (issue 9: alert requests vanished)."""
    first = await start_rig(tmp_path)
    await first.send(submitted("a1", alert_document(), kind="alert"))
    await first.send(submitted("r1", document("M1", 83.63, 22.01)))
    assert sorted(ids(first.last())) == ["a1/s1", "r1/s1"]
    await stop_rig(first)
    again = await start_rig(tmp_path, SimulatedClock(MIDNIGHT + dt.timedelta(minutes=1)))
    try:
        assert "a1/s1" in ids(again.last()) and "r1/s1" in ids(again.last())
        assert "routines" not in {t for t in again.svc.book.requests}  # sanity: ids are requests
    finally:
        await stop_rig(again)


async def test_a_changed_request_is_placed_afresh(rig: Rig) -> None:
    """A revised request must not keep its old slot: here its new target never rises."""
    await rig.send(submitted("r1", document("M1", 83.63, 22.01)))
    assert ids(rig.last()) == ["r1/s1"]
    moved = RequestChanged(
        request_id="r1",
        action="changed",
        state="accepted",
        program="P1",
        owner="ana",
        document=document("M1", 10.0, -85.0),
    )
    await rig.send(moved)
    ev = rig.last()
    assert ev.trigger.startswith("request r1 changed")
    assert ids(ev) == []
    assert {u.sequence_id: u.reason for u in ev.unscheduled}["r1/s1"].startswith("never visible")
