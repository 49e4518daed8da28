"""Scheduler benchmark: our kernel against astroplan's PriorityScheduler on the same workloads.

    .venv/bin/python benchmarks/scheduler.py [--quick] [--out results.json]

Workloads: random targets visible from San Pedro Mártir on a December night, durations
5-30 min, random integer priorities 1..10 (astroplan: lower is better; ours: weight 11 - p).
Both use AltitudeConstraint(30°) and astronomical twilight; both slew at 1 deg/s. Our
runtime includes computing the visibility windows (vectorised altitude on a 60 s grid).
One function, ``objective``, scores both plans. Writes benchmarks/results/scheduler.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import pyros_common  # noqa: F401  (offline IERS before astropy)
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_sun
from astropy.time import Time
from pyros_scheduler.kernel import (
    GreatCircleTransition,
    KernelInput,
    KSequence,
    Placement,
    objective,
    reschedule,
    schedule,
    validate,
)

LAT, LON, HEIGHT = 31.0439, -115.4637, 2800.0
NIGHT_DATE = "2025-12-15"
SLEW_DEG_S = 1.0
MIN_ALT = 30.0
GRID_S = 60.0
ROOT = Path(__file__).resolve().parent


def night_bounds() -> tuple[Time, Time]:
    """Astronomical twilight (Sun at -18°) from a 1-min grid of the Sun's altitude (shared setup)."""
    loc = EarthLocation.from_geodetic(LON * u.deg, LAT * u.deg, HEIGHT * u.m)
    t = Time(f"{NIGHT_DATE}T23:00:00") + np.arange(0, 16 * 3600, 60) * u.s  # 16:00 .. 08:00 local
    alt = get_sun(t).transform_to(AltAz(obstime=t, location=loc)).alt.deg
    dark = np.flatnonzero(alt < -18)
    return t[dark[0]], t[dark[-1]]


class Grid:
    """Night grid: local sidereal time every 60 s (computed once per night)."""

    def __init__(self, start: Time, end: Time) -> None:
        self.t0 = start
        self.s = np.arange(0.0, (end - start).sec + 1e-6, GRID_S)
        self.s[-1] = min(self.s[-1], (end - start).sec)
        # Mean sidereal time from the GMST polynomial (UTC for UT1: < 1 s, far below the grid step).
        days = start.utc.jd - 2451545.0 + self.s / 86400.0
        gmst_h = 18.697374558 + 24.06570982441908 * days
        self.lst_rad = np.radians((gmst_h * 15.0 + LON) % 360.0)


def altitude_deg(grid: Grid, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    phi = np.radians(LAT)
    dec = np.radians(dec_deg)[:, None]
    ha = grid.lst_rad[None, :] - np.radians(ra_deg)[:, None]
    return np.degrees(np.arcsin(np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(ha)))


def windows_s(grid: Grid, ra_deg: np.ndarray, dec_deg: np.ndarray) -> list[tuple[tuple[float, float], ...]]:
    """Runs of grid points above MIN_ALT, as (start_s, end_s) from the night's start, per target."""
    up = altitude_deg(grid, ra_deg, dec_deg) >= MIN_ALT
    pad = np.zeros((up.shape[0], 1), dtype=bool)
    edges = np.diff(np.concatenate([pad, up, pad], axis=1).astype(np.int8), axis=1)
    rs, cs = np.nonzero(edges == 1)
    re, ce = np.nonzero(edges == -1)
    out: list[list[tuple[float, float]]] = [[] for _ in range(up.shape[0])]
    for r, a, b in zip(rs.tolist(), cs.tolist(), ce.tolist(), strict=True):
        out[r].append((float(grid.s[a]), float(grid.s[b - 1])))
    assert (rs == re).all()
    return [tuple(w) for w in out]


def workload(grid: Grid, n: int, seed: int) -> dict[str, np.ndarray]:
    """n random targets that rise above 30° for at least their duration during the night."""
    rng = np.random.default_rng(seed)
    lst0, lst1 = np.degrees(grid.lst_rad[0]), np.degrees(grid.lst_rad[-1])
    span = (lst1 - lst0) % 360
    ra, dec, dur = np.zeros(0), np.zeros(0), np.zeros(0)
    while ra.size < n:
        m = 2 * n
        r = (lst0 - 30 + rng.uniform(0, span + 60, m)) % 360
        d = rng.uniform(-25, 80, m)
        du = rng.uniform(300, 1800, m)
        up = altitude_deg(grid, r, d) >= MIN_ALT
        ok = up.sum(axis=1) * GRID_S >= du + GRID_S
        ra, dec, dur = np.r_[ra, r[ok]], np.r_[dec, d[ok]], np.r_[dur, du[ok]]
    prio = rng.integers(1, 11, n)
    return {"ra": ra[:n], "dec": dec[:n], "dur": np.round(dur[:n]), "prio": prio}


def our_input(grid: Grid, wl: dict[str, np.ndarray]) -> KernelInput:
    wins = windows_s(grid, wl["ra"], wl["dec"])
    seqs = [
        KSequence(f"s{k}", float(wl["dur"][k]), float(11 - wl["prio"][k]), wins[k]) for k in range(len(wins))
    ]
    tr = GreatCircleTransition(wl["ra"], wl["dec"], slew_rate_deg_s=SLEW_DEG_S)
    return KernelInput(seqs, (0.0, float(grid.s[-1])), transition=tr)


def run_ours(grid: Grid, wl: dict[str, np.ndarray]) -> tuple[float, KernelInput, Any]:
    t = time.perf_counter()
    inp = our_input(grid, wl)
    res = schedule(inp)
    return time.perf_counter() - t, inp, res


def run_astroplan(grid: Grid, wl: dict[str, np.ndarray], end: Time) -> tuple[float, list[Placement]]:
    from astroplan import AltitudeConstraint, AtNightConstraint, FixedTarget, Observer, ObservingBlock
    from astroplan.scheduling import PriorityScheduler, Schedule, Transitioner

    t = time.perf_counter()
    observer = Observer(location=EarthLocation.from_geodetic(LON * u.deg, LAT * u.deg, HEIGHT * u.m))
    coords = SkyCoord(wl["ra"] * u.deg, wl["dec"] * u.deg)
    blocks = [
        ObservingBlock(FixedTarget(coords[k], name=f"s{k}"), wl["dur"][k] * u.s, int(wl["prio"][k]))
        for k in range(len(wl["ra"]))
    ]
    constraints = [AltitudeConstraint(min=MIN_ALT * u.deg), AtNightConstraint.twilight_astronomical()]
    scheduler = PriorityScheduler(
        constraints=constraints,
        observer=observer,
        transitioner=Transitioner(slew_rate=SLEW_DEG_S * u.deg / u.s),
    )
    sched = Schedule(grid.t0, end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler(blocks, sched)
    elapsed = time.perf_counter() - t
    out = [
        Placement(b.target.name, 0, float((b.start_time - grid.t0).sec), float((b.end_time - grid.t0).sec))
        for b in sched.scheduled_blocks
        if isinstance(b, ObservingBlock)
    ]
    return elapsed, out


def incremental(grid: Grid, inp: KernelInput, res: Any, wl: dict[str, np.ndarray]) -> dict[str, Any]:
    """One alert request mid-night: window + new input + reschedule, timed together."""
    now = float(0.5 * grid.s[-1])
    t = time.perf_counter()
    a_ra, a_dec = np.array([float(wl["ra"][0]) + 3.0]), np.array([float(wl["dec"][0])])
    win = windows_s(grid, a_ra, a_dec)[0]
    alert = KSequence("alert-grb", 1200.0, 1000.0, win, request_id="alert-grb")
    tr = GreatCircleTransition(np.r_[wl["ra"], a_ra], np.r_[wl["dec"], a_dec], slew_rate_deg_s=SLEW_DEG_S)
    inp2 = KernelInput([*inp.sequences, alert], inp.night, transition=tr)
    res2 = reschedule(res, inp2, now)
    elapsed = time.perf_counter() - t
    return {
        "seconds": elapsed,
        "now_s": now,
        "alert_placement": str(res2.placement("alert-grb")),
        "interrupted": list(res2.interrupted),
        "violations": len(validate(inp2, res2, now_s=now)),
        "objective": res2.objective,
        "placed": len(res2.placements),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="astroplan at 20 and 100 only")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "scheduler.json")
    args = ap.parse_args()

    start, end = night_bounds()
    t = time.perf_counter()
    grid = Grid(start, end)
    grid_s = time.perf_counter() - t
    report: dict[str, Any] = {
        "night": [start.isot, end.isot],
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "night_grid_seconds": grid_s,
        "comparison": [],
        "scaling": {},
    }
    sizes = (20, 100) if args.quick else (20, 100, 300)
    for n in sizes:
        wl = workload(grid, n, seed=n)
        ours_s, inp, res = run_ours(grid, wl)
        ours_s += grid_s  # the night grid is part of computing our windows
        errors = validate(inp, res)
        ap_s, ap_pl = run_astroplan(grid, wl, end)
        row = {
            "n": n,
            "ours_seconds": ours_s,
            "astroplan_seconds": ap_s,
            "speedup": ap_s / ours_s,
            "ours_objective": objective(inp, res.placements),
            "astroplan_objective": objective(inp, ap_pl),
            "ours_placed": len(res.placements),
            "astroplan_placed": len(ap_pl),
            "ours_violations": len(errors),
        }
        report["comparison"].append(row)
        print(json.dumps(row), flush=True)
    times: dict[int, float] = {}
    for n in (1000, 10000):
        wl = workload(grid, n, seed=n)
        best = np.inf
        for _ in range(3):
            s, inp, res = run_ours(grid, wl)
            best = min(best, s + grid_s)
        times[n] = best
        report["scaling"][str(n)] = {
            "seconds": best,
            "placed": len(res.placements),
            "objective": res.objective,
            "violations": len(validate(inp, res)),
        }
        print(n, report["scaling"][str(n)], flush=True)
        if n == 10000:
            incs = [incremental(grid, inp, res, wl) for _ in range(3)]
            inc = min(incs, key=lambda r: r["seconds"])
            report["incremental_10000"] = inc | {"ratio_to_full": inc["seconds"] / best}
            print("incremental", report["incremental_10000"], flush=True)
    report["scaling"]["ratio_10000_over_1000"] = times[10000] / times[1000]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["scaling"]), flush=True)


if __name__ == "__main__":
    main()
