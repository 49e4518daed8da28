"""The alert path: an accepted alert is published at once, improvements come after (issue 12).

The first ScheduleChanged after an alert's RequestChanged comes from the heuristic alone
(no CP-SAT, no rebuild of the future on the event loop), with the alert at its earliest
feasible start; a better plan found afterwards in a worker thread is published as a later
version that keeps the alert where it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pyros_common.clock import SimulatedClock
from test_scheduler_service import (
    MIDNIGHT,
    Rig,
    document,
    start_rig,
    stop_rig,
    submitted,
)

BEFORE_DUSK = dt.datetime(2026, 12, 15, 22, 0, tzinfo=dt.UTC)  # dusk is 02:08 UTC


def alert_doc(valid_from: dt.datetime) -> dict[str, object]:
    return document(
        "GRB 261216A",
        60.0,
        30.0,
        program="GRB",
        kind="alert",
        alert_id="ivo://svom#sb9",
        priority=80,
        valid_from=valid_from.isoformat(),
        valid_until=(valid_from + dt.timedelta(hours=10)).isoformat(),
        decay_index=1.0,
        sequence={"mandatory": True},
    )


@pytest.fixture
async def early(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await start_rig(tmp_path, SimulatedClock(BEFORE_DUSK))
    yield r
    await stop_rig(r)


async def routine_pool(rig: Rig, n: int) -> None:
    for k in range(n):
        await rig.send(submitted(f"r{k}", document(f"T{k}", 20.0 + 9.0 * k, 10.0 + 4.0 * k)))
    await rig.bus.drain()


async def settle(rig: Rig) -> None:
    """Wait for the improvement under way, then for its version to be out."""
    await rig.svc.handlers.idle()
    await rig.bus.drain()


async def test_before_dusk_the_alert_plan_is_out_before_cp_sat(early: Rig) -> None:
    await routine_pool(early, 8)
    n = len(early.versions())
    await early.send(submitted("a1", alert_doc(BEFORE_DUSK), kind="alert"))
    first = early.versions()[n]
    assert first.trigger == "alert request a1 accepted"
    assert "CP-SAT" not in first.solver  # no exact solve on the alert's critical path
    grb = next(s for s in first.scheduled if s.request_id == "a1")
    # the alert opens the night: nothing routine before it
    assert all(s.start >= grb.end for s in first.scheduled if s.request_id != "a1")
    await settle(early)
    later = early.versions()[n + 1 :]
    for ev in later:
        assert ev.trigger == "alert request a1 accepted (improved)" and "CP-SAT" in ev.solver
        assert ev.objective > first.objective
        again = next(s for s in ev.scheduled if s.request_id == "a1")
        assert again.start == grb.start


async def test_at_night_the_alert_goes_first_and_the_rebuild_follows(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, SimulatedClock(MIDNIGHT))
    try:
        await routine_pool(rig, 10)
        n = len(rig.versions())
        await rig.send(submitted("a1", alert_doc(MIDNIGHT), kind="alert"))
        first = rig.versions()[n]
        assert "rebuilt" not in first.solver and "CP-SAT" not in first.solver
        grb = next(s for s in first.scheduled if s.request_id == "a1")
        # at most what already runs before it, then the alert
        before = [s for s in first.scheduled if s.start < grb.start]
        assert all(s.start <= MIDNIGHT for s in before), before
        await settle(rig)
        for ev in rig.versions()[n + 1 :]:
            assert ev.trigger.endswith("(improved)")
            assert next(s for s in ev.scheduled if s.request_id == "a1").start == grb.start
    finally:
        await stop_rig(rig)
