"""majordome on the in-process bus with a simulated clock: the night's states, dispatch, pauses,
preemption and dawn, as the events on pyros.system and pyros.device.commands show them."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pyros_common.bus import InProcessBus
from pyros_common.bus.port import decode
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import (
    DeviceCommand,
    DeviceStatus,
    Event,
    ObservationChanged,
    ScheduleChanged,
    ScheduledSequence,
    SystemChanged,
)
from pyros_common.domain.sky.night import night_bounds
from pyros_common.domain.sky.sites import SITES
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_majordome.app import MajordomeService
from pyros_majordome.domain.night import IllegalNightTransition, NightState, transition

UTC = dt.UTC
NIGHT = dt.date(2026, 12, 15)
DUSK, DAWN = night_bounds(SITES["gft-spm"], NIGHT)


@dataclass
class Rig:
    bus: InProcessBus
    clock: SimulatedClock
    svc: MajordomeService

    def system(self) -> list[SystemChanged]:
        return [decode(SystemChanged.topic, raw) for raw in self.bus.log[SystemChanged.topic]]  # type: ignore[misc]

    def commands(self) -> list[DeviceCommand]:
        return [decode(DeviceCommand.topic, raw) for raw in self.bus.log[DeviceCommand.topic]]  # type: ignore[misc]

    def dispatched(self) -> list[str]:
        return [e.dispatch.sequence_id for e in self.system() if e.dispatch is not None]

    async def send(self, event: Event, producer: str = "test") -> None:
        await self.bus.publish(type(event).topic, event.stamped(producer=producer, sent_at=self.clock.now()))
        await self.settle()

    async def settle(self) -> None:
        for _ in range(5):
            await self.bus.drain()
            for _ in range(20):
                await asyncio.sleep(0)

    async def at(self, when: dt.datetime) -> None:
        """Move the clock to ``when`` in small steps, letting the night loop run at each."""
        while self.clock.now() < when:
            self.clock.advance(min(30.0, (when - self.clock.now()).total_seconds()))
            await self.settle()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = SimulatedClock(DUSK - dt.timedelta(minutes=10))
    bus = InProcessBus(clock=clock)
    ctx = ServiceContext(bus=bus, clock=clock, settings=Settings())
    svc = MajordomeService(ctx)
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    await bus.start()
    await svc.on_start()
    r = Rig(bus, clock, svc)
    await r.settle()
    yield r
    await svc.on_stop()
    await bus.stop()


def schedule(
    version: int, *entries: tuple[str, dt.datetime, float], interrupted: str | None = None
) -> ScheduleChanged:
    return ScheduleChanged(
        night=NIGHT,
        version=version,
        night_start=DUSK,
        night_end=DAWN,
        trigger="test",
        scheduled=[
            ScheduledSequence(
                request_id=sid.rsplit("-s", 1)[0],
                sequence_id=sid,
                telescope_id="gft",
                start=start,
                end=start + dt.timedelta(minutes=minutes),
                weight=1.0,
            )
            for sid, start, minutes in entries
        ],
        interrupted=interrupted,
    )


def test_the_night_table_refuses_illegal_changes() -> None:
    assert transition(NightState.DAY, NightState.DUSK) is NightState.DUSK
    with pytest.raises(IllegalNightTransition, match="day -> running"):
        transition(NightState.DAY, NightState.RUNNING)
    with pytest.raises(IllegalNightTransition):
        transition(NightState.PAUSED, NightState.CLOSING)


async def test_dusk_opens_asks_for_the_plan_and_dispatches_at_the_planned_starts(rig: Rig) -> None:
    t1 = DUSK + dt.timedelta(minutes=20)
    await rig.send(schedule(1, ("r1-s1", t1, 10), ("r2-s1", t1 + dt.timedelta(minutes=15), 10)), "scheduler")
    assert rig.system() == []  # still day
    await rig.at(DUSK + dt.timedelta(seconds=1))
    states = [(e.state, e.replan) for e in rig.system()]
    assert states[:2] == [("dusk", True), ("running", False)]
    assert any(c.device_id == "dome" and c.params == {"action": "open"} for c in rig.commands())
    # and the mount is unparked at once: an alert's first command is then its slew
    assert any(c.device_id == "telescope" and c.command == "unpark" for c in rig.commands())
    await rig.at(t1 - dt.timedelta(seconds=5))
    assert rig.dispatched() == []  # not before its start
    await rig.at(t1)
    assert rig.dispatched() == ["r1-s1"]
    # the observer finishes early: the next one still waits for its own start
    await rig.send(ObservationChanged(sequence_id="r1-s1", request_id="r1", action="completed"), "observer")
    assert rig.dispatched() == ["r1-s1"]
    await rig.at(t1 + dt.timedelta(minutes=15))
    assert rig.dispatched() == ["r1-s1", "r2-s1"]


async def test_a_blocking_device_down_pauses_at_once_and_its_return_resumes_with_a_replan(rig: Rig) -> None:
    t1 = DUSK + dt.timedelta(minutes=5)
    await rig.send(schedule(1, ("r1-s1", t1, 60)), "scheduler")
    await rig.at(t1)
    assert rig.dispatched() == ["r1-s1"]
    before = rig.clock.now()
    down = DeviceStatus(device_id="telescope", kind="telescope", state="offline", ok=False, error="link lost")
    await rig.send(down, "device-gateway")
    paused = [e for e in rig.system() if e.state == "paused"]
    assert paused and "telescope offline (link lost)" in paused[0].reason
    assert (paused[0].sent_at - before).total_seconds() < 2.0
    cmds = {(c.device_id, c.command) for c in rig.commands()}
    assert {("cam-vis", "abort"), ("cam-nir", "abort"), ("telescope", "park"), ("dome", "dome")} <= cmds
    # the NIR camera is not blocking: its failure pauses nothing
    nir = DeviceStatus(device_id="cam-nir", kind="camera", state="offline", ok=False, error="unplugged")
    await rig.send(nir, "device-gateway")
    assert len([e for e in rig.system() if e.state == "paused"]) == 1
    up = DeviceStatus(device_id="telescope", kind="telescope", state="idle")
    await rig.send(up, "device-gateway")
    resumed = [e for e in rig.system() if e.state == "running" and e.replan]
    assert resumed and resumed[0].reason.startswith("resumed")
    night = rig.svc.night.view()
    assert night["pauses"][0]["end"] is not None


async def test_an_alert_put_first_by_the_plan_preempts_the_running_sequence(rig: Rig) -> None:
    t1 = DUSK + dt.timedelta(minutes=5)
    await rig.send(schedule(1, ("r1-s1", t1, 60)), "scheduler")
    await rig.at(t1 + dt.timedelta(minutes=3))
    assert rig.dispatched() == ["r1-s1"]
    now = rig.clock.now()
    await rig.send(
        schedule(
            2, ("alert-req-s1", now, 8), ("r1-s1", now + dt.timedelta(minutes=9), 60), interrupted="r1-s1"
        ),
        "scheduler",
    )
    last = [e for e in rig.system() if e.dispatch is not None][-1]
    assert last.dispatch is not None
    assert last.dispatch.sequence_id == "alert-req-s1" and last.dispatch.preempts == "r1-s1"
    assert last.sent_at == now  # at once: no night time passed


async def test_dawn_parks_closes_takes_calibration_frames_and_checks_the_closure(rig: Rig) -> None:
    await rig.send(schedule(1), "scheduler")
    await rig.at(DAWN + dt.timedelta(seconds=1))
    dawn = [e for e in rig.system() if e.state == "dawn"]
    assert dawn and dawn[-1].dispatch is not None and dawn[-1].dispatch.kind == "calibration"
    assert dawn[-1].dispatch.frames == {"bias": 5, "dark": 5}
    await rig.send(
        ObservationChanged(
            sequence_id=dawn[-1].dispatch.sequence_id,
            request_id=dawn[-1].dispatch.request_id,
            action="completed",
            kind="calibration",
        ),
        "observer",
    )
    await rig.send(DeviceStatus(device_id="telescope", kind="telescope", state="parked"), "device-gateway")
    await rig.send(
        DeviceStatus(device_id="dome", kind="dome", state="idle", values={"shutter": "closed"}),
        "device-gateway",
    )
    await rig.at(rig.clock.now() + dt.timedelta(seconds=30))
    states = [e.state for e in rig.system()]
    assert states[-2:] == ["closing", "day"]
    assert rig.system()[-1].reason == "day: dome closed and telescope parked" and rig.system()[-1].replan


async def test_an_interrupted_sequence_is_not_dispatched_again_until_a_new_plan_places_it(rig: Rig) -> None:
    """Found by benchmarks/alert_to_slew.py: a cancelled request's running sequence, once the
    observer reported it interrupted, was dispatched again from the plan that still held it, and
    the next alert waited for that dispatch to fail (5 s)."""
    t1 = DUSK + dt.timedelta(minutes=5)
    await rig.send(schedule(1, ("r1-s1", t1, 60)), "scheduler")
    await rig.at(t1)
    assert rig.dispatched() == ["r1-s1"]
    interrupted = ObservationChanged(
        sequence_id="r1-s1", request_id="r1", action="interrupted", reason="request r1 cancelled"
    )
    await rig.send(interrupted, "observer")
    await rig.at(t1 + dt.timedelta(minutes=1))
    assert rig.dispatched() == ["r1-s1"]  # the stale plan still has it: not again
    now = rig.clock.now()
    await rig.send(schedule(2, ("alert-req-s1", now, 8)), "scheduler")
    assert rig.dispatched() == ["r1-s1", "alert-req-s1"]
    assert [e for e in rig.system() if e.dispatch is not None][-1].sent_at == now
    # a new plan that places the interrupted sequence again dispatches it when its time comes
    later = now + dt.timedelta(minutes=8)
    await rig.send(ObservationChanged(sequence_id="alert-req-s1", request_id="alert-req", action="completed"))
    await rig.send(schedule(3, ("alert-req-s1", now, 8), ("r1-s1", later, 30)), "scheduler")
    await rig.at(later)
    assert rig.dispatched() == ["r1-s1", "alert-req-s1", "r1-s1"]
