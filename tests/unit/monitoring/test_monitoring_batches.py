"""monitoring's batch handler (``Monitor.on_devices``, what the Kafka bus calls with one poll of
statuses) has the effect of ``on_device`` on each status in order: the same devices, the same
history rows, the same verdicts published, the same vote; and its changes are in the database
when it returns (the bus commits the batch's offsets after it)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import ConditionsChanged, DeviceStatus, Event
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_monitoring.domain.health import DeviceReport
from pyros_monitoring.domain.weather import VoteConfig, VoteMemory, WeatherVote
from pyros_monitoring.handlers import Monitor
from pyros_monitoring.metrics import MonitoringMetrics
from pyros_monitoring.settings import MonitoringSettings

START = dt.datetime(2026, 12, 16, 4, 0, tzinfo=dt.UTC)
DEVICES = {"wx-a": "weather", "wx-b": "weather", "plc": "plc", "telescope": "telescope", "cam": "camera"}


class MemoryStore:
    """Store's interface, in memory: what monitoring wrote, in order."""

    def __init__(self) -> None:
        self.history: list[tuple[DeviceReport, dict[str, Any]]] = []
        self.touched: list[tuple[DeviceReport, dict[str, Any]]] = []
        self.conditions: list[dict[str, Any]] = []
        self.fail_next = 0

    def load_devices(self) -> dict[str, DeviceReport]:
        return {}

    def load_memory(self, site_id: str) -> VoteMemory | None:
        return None

    def excluded(self, site_id: str) -> tuple[str, ...] | None:
        return None

    def record_changes(self, changes: Iterable[tuple[DeviceReport, Mapping[str, Any]]]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("database down")
        self.history.extend((r, dict(v)) for r, v in changes)

    def touch(self, seen: Iterable[tuple[DeviceReport, Mapping[str, Any]]]) -> None:
        self.touched.extend((r, dict(v)) for r, v in seen)

    def save_conditions(self, site_id: str, *, verdict: dict[str, Any], memory: VoteMemory, at: Any) -> None:
        self.conditions.append(verdict)


def monitor(clock: SimulatedClock) -> tuple[Monitor, MemoryStore, list[Event]]:
    store = MemoryStore()
    published: list[Event] = []

    async def publish(event: Event, **_: Any) -> None:
        published.append(event)

    ctx = ServiceContext(bus=None, clock=clock, settings=Settings(telescope_id="gft"))  # type: ignore[arg-type]
    m = Monitor(
        ctx=ctx,
        settings=MonitoringSettings(confirm_s=30, reopen_after_s=120, stale_after_s=30),
        store=store,  # type: ignore[arg-type]
        metrics=MonitoringMetrics(CollectorRegistry()),
        publish=publish,
        site_id="gft-spm",
    )
    m.load()
    return m, store, published


weather_values = st.fixed_dictionaries(
    {
        "rain": st.booleans(),
        "sky_minus_ambient_c": st.sampled_from([-30.0, -20.0, -5.0]),
        "ambient_c": st.just(8.0),
    },
    optional={"humidity_pct": st.sampled_from([40.0, 95.0]), "wind_ms": st.sampled_from([4.0, 20.0])},
)


@st.composite
def status(draw: st.DrawFn) -> tuple[DeviceStatus, float]:
    """A status and how long before the batch's clock time its producer sent it [s]."""
    device = draw(st.sampled_from(sorted(DEVICES)))
    kind = DEVICES[device]
    state = draw(st.sampled_from(["idle", "idle", "idle", "busy", "slewing", "error", "offline"]))
    values = draw(weather_values) if kind in ("weather", "plc") else {"command": "status"}
    ok = draw(st.booleans()) if state == "error" else True
    event = DeviceStatus(
        device_id=device,
        kind=kind,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        ok=ok,
        error="" if ok else "jammed",
        temperature_c=draw(st.none() | st.sampled_from([-20.0, 5.0])),
        values=values,
    )
    return event, draw(st.sampled_from([0.0, 0.0, 1.0, 5.0, 90.0]))


# a poll: (seconds the clock moves before it, then its statuses); a tick may follow it
polls = st.lists(
    st.tuples(
        st.sampled_from([0.0, 1.0, 10.0, 45.0, 70.0, 200.0]),
        st.lists(status(), min_size=1, max_size=12),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


def stamped(events: list[tuple[DeviceStatus, float]], now: dt.datetime) -> list[DeviceStatus]:
    return [
        e.stamped(producer="device-gateway", sent_at=now - dt.timedelta(seconds=ago)) for e, ago in events
    ]


def comparable(events: list[Event]) -> list[dict[str, Any]]:
    return [e.model_dump(exclude={"event_id", "correlation_id"}) for e in events]


async def replay(script: list[tuple[float, list[tuple[DeviceStatus, float]], bool]], batched: bool) -> Any:
    clock = SimulatedClock(START)
    m, store, published = monitor(clock)
    written_when_returned = True
    for advance, events, tick in script:
        clock.advance(advance)
        batch = stamped(events, clock.now())
        if batched:
            await m.on_devices(batch)
            written_when_returned = written_when_returned and not m._changes
        else:
            for e in batch:
                await m.on_device(e)
        if tick:
            await m.tick()
    m.flush()
    await m.evaluate(refresh_health=True)
    verdict = m.vote.evaluate(clock.now())
    return (
        m.reports,
        store.history,
        store.touched,
        comparable(published),
        verdict,
        m.health(),
        written_when_returned,
    )


@settings(max_examples=150, deadline=None)
@given(polls)
def test_a_batch_has_the_effect_of_its_statuses_one_by_one(
    script: list[tuple[float, list[tuple[DeviceStatus, float]], bool]],
) -> None:
    one = asyncio.run(replay(script, batched=False))
    many = asyncio.run(replay(script, batched=True))
    assert many[:6] == one[:6]
    assert many[6], "a batch returned with changes not yet in the database"


def test_a_run_of_equal_readings_reaches_the_vote_with_its_latest_time() -> None:
    clock = SimulatedClock(START)
    m, _, _ = monitor(clock)
    dry = {"rain": False, "sky_minus_ambient_c": -30.0, "ambient_c": 8.0}
    batch = [
        DeviceStatus(device_id="wx-a", kind="weather", state="idle", values=dry).stamped(
            producer="device-gateway", sent_at=START + dt.timedelta(seconds=s)
        )
        for s in (-50, -40, -30, -20, -10, 0)
    ]
    asyncio.run(m.on_devices(batch))
    source = next(s for s in m.vote.evaluate(START).sources if s.source == "wx-a")
    assert source.last_at == START and source.fresh


def test_two_sources_in_the_rain_in_one_batch_are_unsafe_at_once() -> None:
    clock = SimulatedClock(START)
    m, _, published = monitor(clock)
    dry = {"rain": False, "sky_minus_ambient_c": -30.0, "ambient_c": 8.0}
    wet = {**dry, "rain": True}
    asyncio.run(
        m.on_devices(
            [
                DeviceStatus(device_id=d, kind="weather", state="idle", values=v).stamped(
                    producer="device-gateway", sent_at=START
                )
                for d, v in (("wx-a", dry), ("wx-b", dry), ("wx-a", wet), ("wx-b", wet))
            ]
        )
    )
    last = published[-1]
    assert isinstance(last, ConditionsChanged) and last.safe is False and "rain" in last.reason


def test_a_failed_write_fails_the_batch_and_keeps_its_changes_queued() -> None:
    clock = SimulatedClock(START)
    m, store, _ = monitor(clock)
    store.fail_next = 1
    event = DeviceStatus(device_id="telescope", kind="telescope", state="slewing").stamped(
        producer="device-gateway", sent_at=START
    )
    try:
        asyncio.run(m.on_devices([event]))
    except ConnectionError:
        pass
    else:
        raise AssertionError("the write failed: the batch must fail (its offsets stay uncommitted)")
    asyncio.run(m.on_devices([event]))  # the bus's retry: no change any more, the queue is written
    assert [(r.device_id, r.state) for r, _ in store.history] == [("telescope", "slewing")]


def test_a_failed_flush_keeps_the_changes_for_the_next_tick() -> None:
    clock = SimulatedClock(START)
    m, store, _ = monitor(clock)
    event = DeviceStatus(device_id="telescope", kind="telescope", state="slewing").stamped(
        producer="device-gateway", sent_at=START
    )
    asyncio.run(m.on_device(event))
    store.fail_next = 1
    try:
        m.flush()
    except ConnectionError:
        pass
    m.flush()
    assert [(r.device_id, r.state) for r, _ in store.history] == [("telescope", "slewing")]


def test_a_safe_reading_back_from_silence_ends_the_claim() -> None:
    vote = WeatherVote(VoteConfig(max_age_s=60))
    assert vote.observe("plc", START, {"clouds": -5.0})  # overcast: a claim
    later = START + dt.timedelta(seconds=70)
    assert vote.observe("plc", later, {"clouds": -30.0})  # back from silence, and clear
    assert not vote.observe("plc", later, {"clouds": -30.0}), "the claim outlived a clear reading"
