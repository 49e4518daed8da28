"""Scheduler benchmark: our kernel against astroplan's PriorityScheduler on the same workloads.

    .venv/bin/python benchmarks/scheduler.py [--quick] [--out results.json]

Workloads: random targets visible from San Pedro Mártir on a December night, random integer
priorities 1..10 (astroplan: lower is better; ours: weight 11 - p), durations drawn from one
of two ranges:
- "anchor" (the headline), 2-10 min: the kind of workload behind the issue's astroplan
  anchor, where PriorityScheduler places 92 of 300 blocks; here it places about 90 of 300;
- "long", 5-30 min: the night holds only ~36 of them, so astroplan gives up on most blocks
  early and runs much faster; reported as well, with its own (lower) ratio.
Both use AltitudeConstraint(30°) and astronomical twilight; both slew at 1 deg/s. Time grids,
stated truthfully: astroplan places blocks on its ``time_resolution`` grid (run at 60 s and at
its default 20 s) and floors each block's duration to whole slots (a 538 s block becomes
480 s at 60 s); our starts are continuous (floats), our windows come from altitudes sampled
every 60 s with their edges interpolated between samples. astroplan's "block already
occupied" failure (raised when its best start falls in a slot it already filled) is
handled: that start is skipped and the next one tried. astroplan is asked for blocks of
whole slots covering each duration (ceil to its grid), so its flooring cuts nothing short.

One independent scorer and validator (``independent_check``: astropy AltAz for the altitude
every 30 s through each placement, the Sun for the night, astropy separations for the
slews) checks both plans and credits each placement at the full duration the sequence
needs, weight × duration; a block astroplan cut short counts as not placed.

Our runtime includes everything we compute from the workload: the visibility windows (domain
code, ``visibility_windows_s``), the kernel input (sequences, transition model) and the
kernel. It is the median of 5 runs after a warm-up, measured two ways:
- cold: the per-night ephemeris cache (sidereal time, Sun, Moon on the night's grid) is
  cleared before every run, so each run pays for it: the headline ratio uses this;
- warm: the cache holds the night (the case of a scheduler replanning during the night).
astroplan's is one run (it takes minutes at 300). At sizes up to EXACT_MAX_SEQUENCES the
planner follows the heuristic with an exact CP-SAT solve: that path is timed and scored too
("exact_cp_sat"). The night bounds (dusk, dawn) are given to both sides. Scaling: our time
at 1,000 and 10,000 on the anchor workload and on a held-out shape (1-3 sequences per
request, exposures 30-300 s × 1-4, RA 0-200°, Dec -25-75°, programs A/B/C, some
all-or-nothing), three seeds each, with Python's cyclic collector paused as the service's
replan pauses it (``NightBook.replan``; a collector pass walks the whole live heap, 60-70 ms
here, and at 10,000 some fell inside the timed runs); the comparison with astroplan keeps
the collector running on both sides. Incremental: through ``NightBook.replan`` after a real
alert request (the service's path: requests -> windows -> kernel input -> reschedule), at
1,000 and 10,000 requests, against a full replan of the same book, median of 15 runs. Two
incremental paths: ``fast`` is the one the service takes after an alert event (the handlers
pass fast=True: repair, alert insertion, gap filling; the plan it publishes; CP-SAT and the
rebuild come after, in a worker thread); ``default`` adds the LNS, the path of a routine
request's change. The ratio is the median over the runs of
each incremental time over the full time measured just before it (ratios of the medians are
recorded too). Writes
benchmarks/results/scheduler.json with the commit, the arguments, the machine and the time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import warnings
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_body
from astropy.time import Time
from machine import commit, machine
from pyros_common._iers import configure_offline_iers
from pyros_common.domain.sky.constraints import Constraints
from pyros_common.domain.sky.night import night_bounds
from pyros_common.domain.sky.sites import SITES
from pyros_common.domain.sky.visibility import clear_night_cache, visibility_windows_s
from pyros_scheduler.kernel import (
    EXACT_MAX_SEQUENCES,
    GreatCircleTransition,
    KernelInput,
    KSequence,
    Placement,
    schedule,
    schedule_exact,
    validate,
    without_cycle_collector,
)

configure_offline_iers()  # offline IERS tables before any astropy time transform

SITE = SITES["gft-spm"]
LAT, LON, HEIGHT = SITE.lat_deg, SITE.lon_deg, SITE.height_m
NIGHT = dt.date(2025, 12, 15)
SLEW_DEG_S = 1.0
MIN_ALT = 30.0
GRID_S = 60.0
CONSTRAINTS = Constraints(min_altitude_deg=MIN_ALT, max_airmass=None)
ASTROPLAN_OCCUPIED = 0  # "block already occupied" failures handled in the last astroplan run
RUNS = 5  # ours: median of RUNS timed runs after one warm-up (astroplan: one run, it takes minutes)
ROOT = Path(__file__).resolve().parent


class Night:
    """The night's bounds (domain.sky.night.night_bounds), as datetimes and astropy Times."""

    def __init__(self) -> None:
        self.dusk, self.dawn = night_bounds(SITE, NIGHT)
        self.t0, self.t1 = Time(self.dusk), Time(self.dawn)
        self.length_s = (self.dawn - self.dusk).total_seconds()


def windows_s(night: Night, ra_deg: np.ndarray, dec_deg: np.ndarray) -> list[list[tuple[float, float]]]:
    """Visibility windows from the domain code (vectorised, 60 s grid), seconds after dusk."""
    return visibility_windows_s(SITE, ra_deg, dec_deg, CONSTRAINTS, night.dusk, night.dawn, step_s=GRID_S)


WORKLOADS: dict[str, tuple[float, float]] = {"anchor": (120.0, 600.0), "long": (300.0, 1800.0)}


def workload(
    night: Night, n: int, seed: int, durations_s: tuple[float, float] = WORKLOADS["anchor"]
) -> dict[str, np.ndarray]:
    """n random targets that stay above 30° for at least their duration during the night."""
    rng = np.random.default_rng(seed)
    ra, dec, dur = np.zeros(0), np.zeros(0), np.zeros(0)
    while ra.size < n:
        m = 2 * n
        r = rng.uniform(0, 360, m)
        d = rng.uniform(-25, 80, m)
        du = rng.uniform(*durations_s, m)
        longest = np.array([max((b - a for a, b in w), default=0.0) for w in windows_s(night, r, d)])
        ok = longest >= du + GRID_S
        ra, dec, dur = np.r_[ra, r[ok]], np.r_[dec, d[ok]], np.r_[dur, du[ok]]
    prio = rng.integers(1, 11, n)
    return {"ra": ra[:n], "dec": dec[:n], "dur": np.round(dur[:n]), "prio": prio}


def our_input(night: Night, wl: dict[str, np.ndarray]) -> KernelInput:
    wins = windows_s(night, wl["ra"], wl["dec"])
    dur, weight = wl["dur"].tolist(), (11.0 - wl["prio"]).tolist()
    seqs = [KSequence(f"s{k}", dur[k], weight[k], tuple(w)) for k, w in enumerate(wins)]
    tr = GreatCircleTransition(wl["ra"], wl["dec"], slew_rate_deg_s=SLEW_DEG_S)
    return KernelInput(seqs, (0.0, night.length_s), transition=tr)


def run_ours(night: Night, wl: dict[str, np.ndarray]) -> tuple[float, KernelInput, Any]:
    t = time.perf_counter()
    inp = our_input(night, wl)
    res = schedule(inp)
    return time.perf_counter() - t, inp, res


def run_cold(night: Night, wl: dict[str, np.ndarray]) -> tuple[float, KernelInput, Any]:
    clear_night_cache()
    return run_ours(night, wl)


def timed_ours(night: Night, wl: dict[str, np.ndarray]) -> tuple[float, float, KernelInput, Any]:
    """(cold, warm) medians of RUNS runs after a warm-up (the plan is deterministic)."""
    run_ours(night, wl)
    cold = [run_cold(night, wl) for _ in range(RUNS)]
    run_ours(night, wl)
    warm = [run_ours(night, wl) for _ in range(RUNS)]
    assert cold[0][2].placements == warm[0][2].placements
    return (
        float(np.median([r[0] for r in cold])),
        float(np.median([r[0] for r in warm])),
        cold[0][1],
        cold[0][2],
    )


def run_astroplan(
    night: Night, wl: dict[str, np.ndarray], resolution_s: float = GRID_S
) -> tuple[float, list[Placement]]:
    from astroplan import AltitudeConstraint, AtNightConstraint, FixedTarget, Observer, ObservingBlock
    from astroplan.scheduling import PriorityScheduler, Schedule, Transitioner

    t = time.perf_counter()
    observer = Observer(location=EarthLocation.from_geodetic(LON * u.deg, LAT * u.deg, HEIGHT * u.m))
    coords = SkyCoord(wl["ra"] * u.deg, wl["dec"] * u.deg)
    blocks = [
        # Asked for whole slots covering the duration: astroplan floors a block to whole slots,
        # and a block shorter than the sequence's duration would not count.
        ObservingBlock(
            FixedTarget(coords[k], name=f"s{k}"),
            float(np.ceil(wl["dur"][k] / resolution_s) * resolution_s) * u.s,
            int(wl["prio"][k]),
        )
        for k in range(len(wl["ra"]))
    ]
    constraints = [AltitudeConstraint(min=MIN_ALT * u.deg), AtNightConstraint.twilight_astronomical()]

    class Tolerant(PriorityScheduler):  # type: ignore[misc]
        """PriorityScheduler whose "block already occupied" skips that start (else it aborts)."""

        failures = 0

        def attempt_insert_block(self, b: Any, new_start_time: Any, start_time_idx: int) -> bool:
            try:
                return bool(super().attempt_insert_block(b, new_start_time, start_time_idx))
            except ValueError as exc:
                if "already occupied" not in str(exc):
                    raise
                Tolerant.failures += 1
                return False

    scheduler = Tolerant(
        constraints=constraints,
        observer=observer,
        transitioner=Transitioner(slew_rate=SLEW_DEG_S * u.deg / u.s),
        time_resolution=resolution_s * u.s,
    )
    sched = Schedule(night.t0, night.t1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler(blocks, sched)
    global ASTROPLAN_OCCUPIED
    ASTROPLAN_OCCUPIED = Tolerant.failures
    elapsed = time.perf_counter() - t
    out = [
        Placement(b.target.name, 0, float((b.start_time - night.t0).sec), float((b.end_time - night.t0).sec))
        for b in sched.scheduled_blocks
        if isinstance(b, ObservingBlock)
    ]
    return elapsed, out


ALT_TOL_DEG = 0.05  # our windows come from 60 s samples with interpolated edges
SUN_TOL_DEG = 0.1
SLEW_TOL_S = 1.0


def independent_check(night: Night, wl: dict[str, np.ndarray], placements: list[Placement]) -> dict[str, Any]:
    """Score and validate a plan with astropy alone (no code shared with either scheduler).

    A placement is credited weight (11 - priority) × the sequence's full duration when it
    lasts that duration, keeps the target at or above 30° (AltAz every 30 s and at both
    ends), keeps the Sun below -18°, and leaves the great-circle slew (1 deg/s) after the
    placement before it. Anything else is a violation (a block cut short: not placed).
    """
    loc = EarthLocation.from_geodetic(LON * u.deg, LAT * u.deg, HEIGHT * u.m)
    pls = sorted(placements, key=lambda p: p.start_s)
    idx = [int(p.id[1:]) for p in pls]
    t_rel: list[float] = []
    owner: list[int] = []
    for j, p in enumerate(pls):
        ts = np.unique(np.r_[np.arange(p.start_s, p.end_s, 30.0), p.end_s])
        t_rel += ts.tolist()
        owner += [j] * ts.size
    violations: list[str] = []
    ok = np.ones(len(pls), dtype=bool)
    if pls:
        times = night.t0 + np.asarray(t_rel) * u.s
        who = np.asarray(owner)
        src = np.asarray(idx)[who]
        frame = AltAz(obstime=times, location=loc)
        alt = SkyCoord(wl["ra"][src] * u.deg, wl["dec"][src] * u.deg).transform_to(frame).alt.deg
        sun = get_body("sun", times, loc).transform_to(frame).alt.deg
        low = np.zeros(len(pls))
        np.minimum.at(low, who, alt - MIN_ALT)
        sun_hi = np.full(len(pls), -90.0)
        np.maximum.at(sun_hi, who, sun)
        for j, p in enumerate(pls):
            k = idx[j]
            if p.end_s - p.start_s < wl["dur"][k] - 1e-3:
                ok[j] = False
                violations.append(f"{p.id}: cut short ({p.end_s - p.start_s:.0f} s of {wl['dur'][k]:.0f} s)")
            if low[j] < -ALT_TOL_DEG:
                ok[j] = False
                violations.append(f"{p.id}: below {MIN_ALT:g} deg by {-low[j]:.2f} deg")
            if sun_hi[j] > -18.0 + SUN_TOL_DEG:
                ok[j] = False
                violations.append(f"{p.id}: Sun at {sun_hi[j]:.1f} deg")
        c = SkyCoord(wl["ra"][idx] * u.deg, wl["dec"][idx] * u.deg)
        sep = c[:-1].separation(c[1:]).deg if len(pls) > 1 else np.zeros(0)
        for j in range(1, len(pls)):
            need = pls[j - 1].end_s + sep[j - 1] / SLEW_DEG_S
            if pls[j].start_s < need - SLEW_TOL_S:
                ok[j] = False
                violations.append(f"{pls[j].id}: starts {need - pls[j].start_s:.1f} s before the slew ends")
    weight = 11.0 - wl["prio"].astype(float)
    score = float(sum(weight[idx[j]] * wl["dur"][idx[j]] for j in range(len(pls)) if ok[j]))
    return {
        "objective": score,
        "placed": int(ok.sum()),
        "violations": len(violations),
        "violation_examples": violations[:5],
        "min_altitude_margin_deg": float(low.min()) if pls else None,
    }


def request_docs(wl: dict[str, np.ndarray]) -> list[Any]:
    """The workload as stored requests (one sequence each; exposures that give its duration)."""
    from pyros_common.domain.requests import Request

    out = []
    for k in range(len(wl["ra"])):
        n = max(1, int(wl["dur"][k] // 60))
        out.append(
            Request.model_validate(
                {
                    "name": f"s{k}",
                    "program": "P",
                    "id": f"q{k}",
                    "user": "bench",
                    "priority": int(100 - 10 * int(wl["prio"][k])),
                    "sequences": [
                        {
                            "name": "s",
                            "target": {
                                "name": f"s{k}",
                                "ra_deg": float(wl["ra"][k]),
                                "dec_deg": float(wl["dec"][k]),
                            },
                            "date": NIGHT,
                            "constraints": {"min_altitude_deg": MIN_ALT, "max_airmass": None},
                            "albums": [
                                {"detector": "VIS", "plans": [{"filter": "r", "exposure_s": 50, "count": n}]}
                            ],
                        }
                    ],
                }
            )
        )
    return out


def service_path(night: Night, n: int, runs: int = 15) -> dict[str, Any]:
    """A full replan and an incremental one after an alert request, both through NightBook.

    Wall time (median of ``runs``) is the headline; the process's CPU time (median) is
    recorded too: on a shared machine a run of milliseconds is often preempted, and CPU
    time counts only the work done."""
    from pyros_common.domain.requests import Request
    from pyros_scheduler.book import NightBook

    wl = workload(night, n, seed=n)
    reqs = request_docs(wl)
    now = night.dusk + dt.timedelta(seconds=0.5 * night.length_s)
    fulls, incs, fasts, info = [], [], [], {}
    cpu_fulls, cpu_incs, cpu_fasts = [], [], []
    for r in range(runs):
        clear_night_cache()
        book = NightBook(site=SITE, telescopes=("gft",), monotonic=time.perf_counter)
        for q in reqs:
            book.add(q, now)
        t, c = time.perf_counter(), time.process_time()
        first = book.replan(now, "bench", full=True)
        fulls.append(time.perf_counter() - t)
        cpu_fulls.append(time.process_time() - c)
        alert = Request.model_validate(
            {
                "name": "GRB",
                "program": "GRB",
                "id": f"alert{r}",
                "user": "bench",
                "kind": "alert",
                "alert_id": f"ivo://bench#{r}",
                "priority": 80,
                "valid_from": now.isoformat(),
                "valid_until": (now + dt.timedelta(hours=6)).isoformat(),
                "decay_index": 1.0,
                "sequences": [
                    {
                        "name": "early",
                        "mandatory": True,
                        "target": {
                            "name": "GRB",
                            "ra_deg": float(wl["ra"][0]) + 3.0,
                            "dec_deg": float(wl["dec"][0]),
                        },
                        "date": NIGHT,
                        "constraints": {"min_altitude_deg": 20.0, "max_airmass": 3.0},
                        "albums": [
                            {"detector": "VIS", "plans": [{"filter": "r", "exposure_s": 60, "count": 10}]}
                        ],
                    }
                ],
            }
        )
        for fast, acc, cpu in ((True, fasts, cpu_fasts), (False, incs, cpu_incs)):
            b2 = book if not fast else None
            if fast:
                # the same book state again: a fresh copy of the first plan
                b2 = NightBook(site=SITE, telescopes=("gft",), monotonic=time.perf_counter)
                b2.requests, b2.windows, b2.night, b2.plan = (
                    dict(book.requests),
                    book.windows,
                    book.night,
                    first.plan,
                )
            assert b2 is not None
            t, c = time.perf_counter(), time.process_time()
            b2.add(alert, now)
            v = b2.replan(now, "alert", fast=fast)
            acc.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            kin = v.plan.night_input.kernel
            info["fast" if fast else "default"] = {
                "solver": v.plan.solver,
                "violations": len(validate(kin, v.plan.result, now_s=v.plan.night_input.to_s(now))),
                "alert_start": next(
                    (s.start.isoformat() for s in v.plan.scheduled if s.request_id == alert.id), None
                ),
                "placed": len(v.plan.scheduled),
            }
    full, inc, fast_s = float(np.median(fulls)), float(np.median(incs)), float(np.median(fasts))
    cpu_full, cpu_inc, cpu_fast = (float(np.median(x)) for x in (cpu_fulls, cpu_incs, cpu_fasts))
    return {
        "requests": n,
        "full_replan_seconds": full,
        "incremental_seconds": inc,
        "incremental_fast_seconds": fast_s,
        "ratio_to_full": inc / full,
        "fast_ratio_to_full": fast_s / full,
        # Each run's incremental replan over the full one just before it (the same moment of a
        # shared machine, whose speed drifts by tens of percent within a run): their median.
        "paired_ratio_to_full": float(np.median([i / f for i, f in zip(incs, fulls, strict=True)])),
        "paired_fast_ratio_to_full": float(np.median([i / f for i, f in zip(fasts, fulls, strict=True)])),
        "cpu_full_replan_seconds": cpu_full,
        "cpu_incremental_seconds": cpu_inc,
        "cpu_ratio_to_full": cpu_inc / cpu_full,
        "cpu_fast_ratio_to_full": cpu_fast / cpu_full,
        "wall_seconds_all_runs": {"full": fulls, "incremental": incs, "fast": fasts},
        "runs": runs,
        "detail": info,
    }


def ap_row(night: Night, wl: dict[str, np.ndarray], resolution_s: float, ours_s: float) -> dict[str, Any]:
    try:
        sec, pl = run_astroplan(night, wl, resolution_s)
        error = None
    except Exception as exc:  # recorded, not hidden: the table says astroplan failed
        sec, pl, error = float("nan"), [], f"{type(exc).__name__}: {exc}"
    chk = independent_check(night, wl, pl)
    cut = sum(1 for p in pl if p.end_s - p.start_s < wl["dur"][int(p.id[1:])] - 1e-3)
    return {
        "time_resolution_s": resolution_s,
        "seconds": sec,
        "speedup": sec / ours_s,
        "objective_scored": chk["objective"],
        "placed_scored": chk["placed"],
        "blocks_returned": len(pl),
        "blocks_cut_short": cut,
        "violations": chk["violations"],
        "violation_examples": chk["violation_examples"],
        "occupied_failures_handled": ASTROPLAN_OCCUPIED,
        "error": error,
    }


def compare(
    night: Night, n: int, name: str, durations: tuple[float, float], ap20: bool = True
) -> dict[str, Any]:
    """One size of one workload: ours, astroplan at 60 s and at its default 20 s, one scorer."""
    wl = workload(night, n, seed=n, durations_s=durations)
    ours_s, warm_s, inp, res = timed_ours(night, wl)
    ours = independent_check(night, wl, list(res.placements))
    row: dict[str, Any] = {
        "workload": name,
        "n": n,
        "ours_seconds": ours_s,
        "ours_warm_seconds": warm_s,
        "ours_objective_scored": ours["objective"],
        "ours_placed_scored": ours["placed"],
        "ours_violations_independent": ours["violations"],
        "ours_violation_examples": ours["violation_examples"],
        "ours_min_altitude_margin_deg": ours["min_altitude_margin_deg"],
        "ours_violations_kernel_validate": len(validate(inp, res)),
        "lns": {k: res.stats[k] for k in ("lns_iterations", "lns_accepted", "gap_filled")},
    }
    if n <= EXACT_MAX_SEQUENCES:
        # What the planner does at this size: the heuristic, then CP-SAT warm-started from it.
        t = time.perf_counter()
        ex = schedule_exact(inp, hint=schedule(inp))
        ex_s = time.perf_counter() - t
        chk = independent_check(night, wl, list(ex.placements))
        row["exact_cp_sat"] = {
            "seconds": ex_s,
            "objective_scored": chk["objective"],
            "placed_scored": chk["placed"],
            "violations": chk["violations"],
            "proved_optimal": bool(ex.stats.get("exact_optimal")),
        }
    row["astroplan_60s"] = ap_row(night, wl, 60.0, ours_s)
    if ap20:
        row["astroplan_20s"] = ap_row(night, wl, 20.0, ours_s)
    best_ap = max(row[k]["objective_scored"] for k in ("astroplan_60s", "astroplan_20s") if k in row)
    row["ours_at_least_astroplan"] = ours["objective"] >= best_ap
    print(
        f"{name:7s} n={n:4d} ours {ours_s * 1e3:8.1f} ms obj {ours['objective']:10.0f} placed {ours['placed']:3d} "
        f"viol {ours['violations']} | "
        + " | ".join(
            f"astroplan@{row[k]['time_resolution_s']:.0f}s {row[k]['seconds']:8.1f} s ({row[k]['speedup']:7.0f}x) "
            f"obj {row[k]['objective_scored']:10.0f} placed {row[k]['placed_scored']:3d} viol {row[k]['violations']}"
            for k in ("astroplan_60s", "astroplan_20s")
            if k in row
        ),
        flush=True,
    )
    return row


def heldout_workload(n: int, seed: int) -> dict[str, Any]:
    """The held-out shape of issue 12: 1-3 sequences per request, exposures 30-300 s × 1-4,
    RA 0-200°, Dec -25-75°, programs A/B/C (weights 3/2/1 × priority offsets), a third of
    the requests all-or-nothing."""
    rng = np.random.default_rng(seed)
    ra, dec, dur, w, req, prog, aon = [], [], [], [], [], [], []
    r = 0
    while len(dur) < n:
        g = "ABC"[int(rng.integers(3))]
        for _ in range(int(rng.integers(1, 4))):
            if len(dur) >= n:
                break
            ra.append(float(rng.uniform(0, 200)))
            dec.append(float(rng.uniform(-25, 75)))
            dur.append(float(round(rng.uniform(30, 300)) * int(rng.integers(1, 5)) + 60.0))
            w.append({"A": 3.0, "B": 2.0, "C": 1.0}[g] * (1.0 + 0.1 * int(rng.integers(-5, 6))))
            req.append(f"r{r}")
            prog.append(g)
            aon.append(r % 3 == 0)
        r += 1
    return {
        "ra": np.asarray(ra),
        "dec": np.asarray(dec),
        "dur": dur,
        "w": w,
        "req": req,
        "prog": prog,
        "aon": aon,
    }


def heldout_time(night: Night, n: int, seed: int) -> tuple[float, int, int]:
    """Windows + input + kernel on the held-out shape: median of RUNS cold runs."""
    wl = heldout_workload(n, seed)
    times, res, inp = [], None, None
    for r in range(RUNS + 1):
        clear_night_cache()
        t = time.perf_counter()
        wins = windows_s(night, wl["ra"], wl["dec"])
        seqs = [
            KSequence(
                f"s{k}",
                wl["dur"][k],
                wl["w"][k],
                tuple(wins[k]),
                request_id=wl["req"][k],
                all_or_nothing=wl["aon"][k],
                program=wl["prog"][k],
            )
            for k in range(n)
        ]
        tr = GreatCircleTransition(wl["ra"], wl["dec"], slew_rate_deg_s=SLEW_DEG_S)
        inp = KernelInput(seqs, (0.0, night.length_s), transition=tr)
        res = schedule(inp)
        if r:
            times.append(time.perf_counter() - t)
    assert res is not None and inp is not None
    return float(np.median(times)), len(res.placements), len(validate(inp, res))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="20,100,300", help="comparison sizes")
    ap.add_argument("--no-ap20", action="store_true", help="skip astroplan at its default 20 s grid")
    ap.add_argument("--seeds", default="1,2,3", help="seeds of the scaling runs")
    ap.add_argument("--service-sizes", default="1000,10000", help="NightBook incremental sizes")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "scheduler.json")
    args = ap.parse_args()
    started = dt.datetime.now(dt.UTC)
    night = Night()
    report: dict[str, Any] = {
        "benchmark": "scheduler: ours against astroplan PriorityScheduler, one independent scorer",
        "commit": commit(),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "machine": machine(),
        "started": started.isoformat(),
        "night": [night.dusk.isoformat(), night.dawn.isoformat()],
        "grids": (
            "astroplan: starts on its time_resolution grid (60 s, and its default 20 s), block "
            "durations floored to whole slots; ours: continuous starts, windows from 60 s altitude "
            "samples with interpolated edges"
        ),
        "timing": (
            f"ours: median of {RUNS} runs after a warm-up, windows + input + kernel included; cold = "
            "per-night ephemeris cache cleared before each run (headline), warm = cache kept; "
            "astroplan: one run"
        ),
        "scoring": "independent_check: astropy AltAz/Sun/separations; weight x full duration; cut short = not placed",
        "workloads": {
            name: {"durations_s": list(d), "priorities": [1, 10], "min_altitude_deg": MIN_ALT}
            for name, d in WORKLOADS.items()
        },
    }
    sizes = [int(x) for x in args.sizes.split(",") if x]
    for name, durations in WORKLOADS.items():
        key = "comparison" if name == "anchor" else f"comparison_{name}"
        report[key] = [compare(night, n, name, durations, ap20=not args.no_ap20) for n in sizes]
    # Scaling: anchor workload and the held-out shape, three seeds.
    scaling: dict[str, Any] = {"anchor": {}, "heldout": {}}
    for seed in [int(x) for x in args.seeds.split(",") if x]:
        t = {}
        for n in (1000, 10000):
            wl = workload(night, n, seed=n + seed)
            # As the service replans (NightBook.replan): the cyclic collector paused meanwhile.
            cold, warm, inp, res = without_cycle_collector(timed_ours)(night, wl)
            t[n] = cold
            scaling["anchor"].setdefault(str(seed), {})[str(n)] = {
                "seconds": cold,
                "warm_seconds": warm,
                "placed": len(res.placements),
                "violations": len(validate(inp, res)),
            }
        scaling["anchor"][str(seed)]["ratio_10000_over_1000"] = t[10000] / t[1000]
        h1, p1, v1 = without_cycle_collector(heldout_time)(night, 1000, seed)
        h10, p10, v10 = without_cycle_collector(heldout_time)(night, 10000, seed)
        scaling["heldout"][str(seed)] = {
            "1000": {"seconds": h1, "placed": p1, "violations": v1},
            "10000": {"seconds": h10, "placed": p10, "violations": v10},
            "ratio_10000_over_1000": h10 / h1,
        }
        print(
            "scaling seed",
            seed,
            scaling["anchor"][str(seed)]["ratio_10000_over_1000"],
            scaling["heldout"][str(seed)]["ratio_10000_over_1000"],
            flush=True,
        )
    report["scaling"] = scaling
    report["incremental_service_path"] = {}
    for n in [int(x) for x in args.service_sizes.split(",") if x]:
        row = service_path(night, n)
        report["incremental_service_path"][str(n)] = row
        print("service path", json.dumps(row), flush=True)
    ratios = [scaling[w][k]["ratio_10000_over_1000"] for w in scaling for k in scaling[w]]
    head = {r["n"]: r for r in report["comparison"]}
    rows = [r for key in report if key.startswith("comparison") for r in report[key]]
    report["targets"] = {
        "speedup_at_300_at_least_1000": head[300]["astroplan_60s"]["speedup"] >= 1000
        if 300 in head
        else None,
        "objective_at_least_astroplan_every_size": all(r["ours_at_least_astroplan"] for r in rows),
        "ours_violations_total": sum(r["ours_violations_independent"] for r in rows),
        "scale_ratio_max": max(ratios) if ratios else None,
        "scale_ratio_at_most_12": all(x <= 12.0 for x in ratios) if ratios else None,
        # After an alert event the service replans with fast=True (handlers: fast=alert) and
        # publishes that plan; the default incremental path is the one a routine change takes.
        "alert_replan_at_most_a_tenth": all(
            r["paired_fast_ratio_to_full"] <= 0.1 for r in report["incremental_service_path"].values()
        ),
        "incremental_at_most_a_tenth": all(
            r["paired_ratio_to_full"] <= 0.1 for r in report["incremental_service_path"].values()
        ),
        "incremental_cpu_at_most_a_tenth": all(
            r["cpu_ratio_to_full"] <= 0.1 for r in report["incremental_service_path"].values()
        ),
    }
    report["finished"] = dt.datetime.now(dt.UTC).isoformat()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps(report["targets"]), flush=True)


if __name__ == "__main__":
    main()
