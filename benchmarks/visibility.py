"""Benchmark: PyROS vectorised visibility vs astroplan on 1,000 random targets, one night.

Run: .venv/bin/python benchmarks/visibility.py [--targets N] [--step S] [--seed K]
Writes benchmarks/results/visibility.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np
from pyros_common._iers import configure_offline_iers
from pyros_common.domain.sky.constraints import Constraints
from pyros_common.domain.sky.night import night_bounds
from pyros_common.domain.sky.sites import SITES
from pyros_common.domain.sky.visibility import clear_night_cache, visibility_windows_s

configure_offline_iers()  # offline IERS tables before any astropy time transform

RESULTS = Path(__file__).parent / "results" / "visibility.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--step", type=float, default=60.0, help="time grid resolution, seconds")
    parser.add_argument("--seed", type=int, default=20250115)
    parser.add_argument("--night", default="2025-01-15")
    parser.add_argument("--repeat", type=int, default=3, help="PyROS runs (best taken)")
    args = parser.parse_args()

    import astropy.units as u
    from astroplan import AirmassConstraint, AltitudeConstraint, Observer, is_observable, observability_table
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    site = SITES["gft-spm"]
    night = dt.date.fromisoformat(args.night)
    start, end = night_bounds(site, night)
    rng = np.random.default_rng(args.seed)
    ra = rng.uniform(0.0, 360.0, args.targets)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, args.targets)))  # uniform on the sphere
    cons = Constraints(min_altitude_deg=30.0, max_airmass=2.0)

    # PyROS. The first call pays astropy's one-off IERS loading, so warm up once; then clear the
    # night cache before every timed run: the headline is the cold figure (the night's Sun, Moon
    # and sidereal time computed inside the timing), as astroplan gets a fresh Observer.
    visibility_windows_s(site, ra[:2], dec[:2], cons, start, end, step_s=args.step)
    runs = []
    for _ in range(args.repeat):
        clear_night_cache()
        t0 = time.perf_counter()
        windows = visibility_windows_s(site, ra, dec, cons, start, end, step_s=args.step)
        runs.append(time.perf_counter() - t0)
    pyros_s = min(runs)
    t0 = time.perf_counter()
    visibility_windows_s(site, ra, dec, cons, start, end, step_s=args.step)
    pyros_warm_s = time.perf_counter() - t0
    pyros_ok = np.array([bool(w) for w in windows])

    # astroplan, same targets, same night, same grid resolution
    def observer() -> Observer:
        # a fresh Observer per call: astroplan caches AltAz frames on it, which would let the
        # second call reuse the first one's work
        return Observer(
            longitude=site.lon_deg * u.deg, latitude=site.lat_deg * u.deg, elevation=site.height_m * u.m
        )

    targets = SkyCoord(ra=ra * u.deg, dec=dec * u.deg)
    time_range = Time([start.replace(tzinfo=None), end.replace(tzinfo=None)], scale="utc")
    constraints = [AltitudeConstraint(min=30 * u.deg), AirmassConstraint(max=2.0)]
    resolution = args.step * u.s
    t0 = time.perf_counter()
    ap_ok = np.asarray(
        is_observable(
            constraints, observer(), targets, time_range=time_range, time_grid_resolution=resolution
        )
    )
    ap_is_observable_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = observability_table(
        constraints, observer(), targets, time_range=time_range, time_grid_resolution=resolution
    )
    ap_table_s = time.perf_counter() - t0
    table_ok = np.asarray(table["ever observable"])

    # observability_table's fraction of time vs our window durations
    ours_frac = np.array([sum(b - a for a, b in w) for w in windows]) / (end - start).total_seconds()
    frac_diff = np.abs(ours_frac - np.asarray(table["fraction of time observable"]))

    result = {
        "site": site.name,
        "night": args.night,
        "night_start_utc": start.isoformat(),
        "night_end_utc": end.isoformat(),
        "targets": args.targets,
        "seed": args.seed,
        "time_grid_resolution_s": args.step,
        "constraints": "altitude >= 30 deg, airmass <= 2 (astroplan: AltitudeConstraint + AirmassConstraint)",
        "pyros_visibility_windows_s": round(pyros_s, 4),
        "pyros_runs_s": [round(r, 4) for r in runs],
        "pyros_cold_note": "night cache cleared before each timed run; the headline ratio uses the best cold run",
        "pyros_warm_s": round(pyros_warm_s, 4),
        "astroplan_is_observable_s": round(ap_is_observable_s, 3),
        "astroplan_observability_table_s": round(ap_table_s, 3),
        "speedup_vs_is_observable": round(ap_is_observable_s / pyros_s, 1),
        "speedup_vs_observability_table": round(ap_table_s / pyros_s, 1),
        "verdict_agreement_is_observable": float(np.mean(pyros_ok == ap_ok)),
        "verdict_agreement_observability_table": float(np.mean(pyros_ok == table_ok)),
        "observable_targets_pyros": int(pyros_ok.sum()),
        "observable_targets_astroplan": int(ap_ok.sum()),
        "max_abs_diff_fraction_of_time_observable": round(float(frac_diff.max()), 4),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
