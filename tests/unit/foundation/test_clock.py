import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pyros_common.clock import SimulatedClock, SystemClock

T0 = datetime(2026, 12, 15, 3, 0, tzinfo=UTC)


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_simulated_clock_refuses_naive_start_and_going_back() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulatedClock(datetime(2026, 1, 1))
    clock = SimulatedClock(T0)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


async def test_manual_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = SimulatedClock(T0)
    woke: list[str] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 3600)), asyncio.create_task(sleeper("early", 60))]
    await asyncio.sleep(0)
    clock.advance(59)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(1)
    await asyncio.sleep(0)
    assert woke == ["early"]
    clock.set(T0 + timedelta(hours=2))
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"]
    assert clock.now() == T0 + timedelta(hours=2)


async def test_fast_clock_runs_a_night_faster_than_real_time() -> None:
    clock = SimulatedClock(T0, speed=36000.0)  # ten hours a second
    await clock.sleep(360)  # six simulated minutes = 10 ms
    assert clock.now() - T0 >= timedelta(seconds=360)
    assert clock.now() - T0 < timedelta(hours=1)


async def test_virtual_clock_jumps_to_deadlines_and_takes_no_time_to_work() -> None:
    import asyncio
    import time

    from pyros_common.bus import InProcessBus
    from pyros_common.clock import VirtualClock, hold

    start = datetime(2026, 12, 16, 2, 0, tzinfo=UTC)
    clock = VirtualClock(start)
    bus = InProcessBus(clock=clock)
    seen: list[datetime] = []

    async def handler(_event: object) -> None:
        await asyncio.sleep(0.01)  # real work: no night time passes
        seen.append(clock.now())

    from pyros_common.contracts import Heartbeat

    bus.subscribe(Heartbeat.topic, "g", handler)
    await bus.start()

    async def night() -> None:
        await clock.sleep(3600)
        await bus.publish(Heartbeat.topic, Heartbeat(service="x", state="ENABLED"))
        async with hold(clock):
            await asyncio.sleep(0.02)  # a thread writes a file: the clock waits
        await clock.sleep(60)
        seen.append(clock.now())

    task = asyncio.create_task(night())
    t0 = time.monotonic()
    await clock.run(until=start + timedelta(hours=10), idle=bus.idle)
    assert time.monotonic() - t0 < 5.0
    await task
    assert seen == [start + timedelta(hours=1), start + timedelta(hours=1, minutes=1)]
    assert clock.now() == start + timedelta(hours=10)
    await bus.stop()
