"""Alert path micro-benchmark: RequestChanged (an accepted alert) in -> ScheduleChanged out.

    .venv/bin/python benchmarks/scheduler_alert.py [--pool 100] [--alerts 15] [--out FILE]

The scheduler service as it runs (handlers, NightBook, SQLite store, in-process bus; no
test code), at 06:00 UTC on the night of 2026-12-15 at San Pedro Mártir, with ``--pool``
routine requests of one sequence each already planned. Each alert request is handed to the
service's RequestChanged handler; the time runs from that call to the first ScheduleChanged
passed to the bus (``publish``), i.e. windows + kernel input + kernel + store + publish.
Two paths in the same run:
- ``fast`` (the service): the heuristic repair only, then the improvement (a rebuild of the
  future, or CP-SAT on small pools) in a worker thread after the publication;
- ``inline`` (baseline, what the service did before): the full replan on the event loop.
Also: the longest the event loop was blocked (a 1 ms ticker's largest delay) while the
alert was handled, and when the improved version (if any) came out. Writes
benchmarks/results/scheduler_alert.json (commit, arguments, machine, time).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import commit, machine
from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import Event, RequestChanged, ScheduleChanged
from pyros_common.db import Database
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_scheduler.app import SchedulerService

ROOT = Path(__file__).resolve().parent
NOW = dt.datetime(2026, 12, 16, 6, 0, tzinfo=dt.UTC)


def document(name: str, ra: float, dec: float, *, alert: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "pyros.request/1",
        "name": name,
        "program": "GRB" if alert else "P1",
        "sequences": [
            {
                "name": "s1",
                "target": {"name": name, "ra_deg": ra, "dec_deg": dec},
                "date": "2026-12-15",
                "albums": [{"detector": "VIS", "plans": [{"filter": "r", "exposure_s": 60, "count": 5}]}],
            }
        ],
    }
    if alert:
        doc |= {
            "kind": "alert",
            "alert_id": name,
            "priority": 80,
            "valid_from": NOW.isoformat(),
            "valid_until": (NOW + dt.timedelta(hours=12)).isoformat(),
            "decay_index": 1.0,
        }
        doc["sequences"][0]["mandatory"] = True
        doc["sequences"][0]["constraints"] = {"min_altitude_deg": 20, "max_airmass": 3.0}
    return doc


def accepted(rid: str, doc: dict[str, Any], kind: str) -> RequestChanged:
    ev = RequestChanged(
        request_id=rid,
        action="accepted",
        state="accepted",
        kind=kind,
        program=doc["program"],
        owner="bench",
        document=doc,
    )
    return ev.stamped(producer="routines", sent_at=NOW)


async def ticker(probe: dict[str, float]) -> None:
    """A 1 ms ticker: its largest lateness is the longest the event loop was blocked."""
    last = time.perf_counter()
    while not probe["stop"]:
        await asyncio.sleep(0.001)
        t = time.perf_counter()
        probe["worst"] = max(probe["worst"], t - last - 0.001)
        last = t


async def run(pool: int, alerts: int, fast: bool, tmp: Path, seed: int) -> dict[str, Any]:
    db = Database(f"sqlite:///{tmp / f'bench-{fast}.db'}")
    db.upgrade()
    clock = SimulatedClock(NOW)
    bus = InProcessBus(clock=clock)
    ctx = ServiceContext(bus=bus, clock=clock, settings=Settings(), db=db)
    svc = SchedulerService(ctx, night_loop=False, auth_dependency=lambda: None)
    h = svc.handlers
    published: list[tuple[float, ScheduleChanged]] = []
    real_publish = h.publish

    async def publish(ev: Event) -> None:
        if isinstance(ev, ScheduleChanged):
            published.append((time.perf_counter(), ev))
        await real_publish(ev)

    h.publish = publish
    if not fast:
        replan = svc.book.replan
        svc.book.replan = lambda now, trigger, *, full=False, fast=False: replan(now, trigger, full=full)  # type: ignore[method-assign]
    await bus.start()
    await svc.on_start()
    rng = np.random.default_rng(seed)
    # Targets up at 06:00 UTC from San Pedro Mártir in December (RA 0-140°).
    for k in range(pool):
        await h.on_request(
            accepted(
                f"r{k}", document(f"T{k}", float(rng.uniform(0, 140)), float(rng.uniform(-10, 70))), "routine"
            )
        )
    await h.idle()
    latencies, blocked, improved_after, alert_starts = [], [], [], []
    for k in range(alerts):
        ra, dec = float(rng.uniform(30, 110)), float(rng.uniform(0, 60))
        ev = accepted(f"a{k}", document(f"GRB{k}", ra, dec, alert=True), "alert")
        n0 = len(published)
        probe = {"worst": 0.0, "stop": 0.0}
        tick = asyncio.create_task(ticker(probe))
        await asyncio.sleep(0.005)
        t0 = time.perf_counter()
        await h.on_request(ev)
        await asyncio.sleep(0)
        await h.idle()
        probe["stop"] = 1.0
        await tick
        worst = probe["worst"]
        first_t, first = published[n0]
        latencies.append(first_t - t0)
        blocked.append(worst)
        later = published[n0 + 1 :]
        if later:
            improved_after.append(later[-1][0] - t0)
        pl = next((s for s in first.scheduled if s.request_id == f"a{k}"), None)
        alert_starts.append(None if pl is None else pl.start.isoformat())
    await svc.on_stop()
    await bus.stop()
    n_seq = len(svc.book.plan.night_input.kernel.sequences) if svc.book.plan else 0
    return {
        "path": "fast" if fast else "inline",
        "pool_sequences_at_end": n_seq,
        "alerts": alerts,
        "request_changed_to_schedule_changed_ms": {
            "median": 1e3 * statistics.median(latencies),
            "min": 1e3 * min(latencies),
            "max": 1e3 * max(latencies),
            "each": [round(1e3 * x, 2) for x in latencies],
        },
        "event_loop_blocked_max_ms": {"median": 1e3 * statistics.median(blocked), "max": 1e3 * max(blocked)},
        "improved_version_after_ms": (
            {"count": len(improved_after), "median": 1e3 * statistics.median(improved_after)}
            if improved_after
            else None
        ),
        "first_version_solver": first.solver,
        "alert_placed_in_first_version": sum(s is not None for s in alert_starts),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        fast = await run(args.pool, args.alerts, True, Path(tmp), args.seed)
        inline = await run(args.pool, args.alerts, False, Path(tmp), args.seed)
    return {"fast": fast, "inline_baseline": inline}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--pool", type=int, default=100, help="routine requests (one sequence each) already planned"
    )
    ap.add_argument("--alerts", type=int, default=15, help="alert requests handled, one after the other")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "scheduler_alert.json")
    args = ap.parse_args()
    out = asyncio.run(main_async(args))
    report = {
        "benchmark": "scheduler alert path: RequestChanged handled -> first ScheduleChanged published",
        "commit": commit(),
        "arguments": vars(args) | {"out": str(args.out)},
        "machine": machine(),
        "time": dt.datetime.now(dt.UTC).isoformat(),
        **out,
        "speedup_median": out["inline_baseline"]["request_changed_to_schedule_changed_ms"]["median"]
        / out["fast"]["request_changed_to_schedule_changed_ms"]["median"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
