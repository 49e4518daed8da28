"""Afterglow position accuracy on random simulated fields: the analyzer's pipeline end to end.

Each field: a random sky position (seeded), an error circle of 3' (what ``pyros night`` injects
into), an afterglow (mag 14 one minute after the trigger, fading as t^-1) at a random point of
it, and ``--frames`` 30 s VIS frames (2048 x 2048, 0.38"/px) taken from 2 min after the trigger,
each with its own pointing error of 1-4' and rotation error up to 0.5 deg. The frames go through
``pyros_analyzer.pipeline.analyse`` (calibration, sep extraction, WCS refined against the
catalogue, zero point) and ``domain.candidates``; success is a candidate above the threshold
within 1" of the injected position. The same fields without an injection count the false
candidates. Baseline in the same run: each field's first frame solved with Tycho-2 alone
(astrometry.net's index files through query-starkd), to show why the deep catalogue is needed.

    .venv/bin/python benchmarks/analyzer_accuracy.py [--fields 20] [--frames 3] [--seed 14]

Writes benchmarks/results/analyzer_accuracy.json (commit, arguments, machine, time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "analyzer_accuracy.json"

from night import commit, machine  # noqa: E402


def run_field(k: int, *, seed: int, frames: int, inject: bool, tmp: Path, tycho: Any) -> dict[str, Any]:
    from astropy.io import fits
    from pyros_analyzer.catalogue import SimulatedSkyCatalogue
    from pyros_analyzer.domain import candidates as cand
    from pyros_analyzer.pipeline import analyse
    from pyros_analyzer.settings import AnalyzerSettings
    from pyros_common.clock import SimulatedClock
    from pyros_simulators import VIS, Camera, ExposureRequest, Sky
    from pyros_simulators.sky import point_in_error_circle

    rng = np.random.default_rng([seed, k])
    ra = float(rng.uniform(0, 360))
    dec = math.degrees(math.asin(float(rng.uniform(-0.95, 0.95))))
    trigger = datetime(2026, 4, 21, 3, 0, tzinfo=UTC) + timedelta(days=k)
    clock = SimulatedClock(trigger)
    sky = Sky(site=None, seed=0)
    circle = cand.ErrorCircle(ra, dec, 0.05)
    true = point_in_error_circle(ra, dec, 0.05, seed=f"{seed}-{k}")
    if inject:
        sky.inject_transient(*true, 14.0, trigger, 1.0, ref_s=60.0)
    cam = Camera(clock, VIS, sky=sky)
    cam._stream = 1000 * k + (0 if inject else 500)  # each field its own pointing errors
    cfg = AnalyzerSettings()
    catalogue = SimulatedSkyCatalogue(sky)
    tracks: list[cand.Track] = []
    images: list[dict[str, Any]] = []
    tycho_only: dict[str, Any] | None = None
    for f in range(frames):
        when = trigger + timedelta(seconds=120 + 40 * f)
        p = tmp / f"field{k:02d}-{'inj' if inject else 'none'}-{f}.fits"
        exp = cam.observe(ExposureRequest(30.0, p, ra_deg=ra, dec_deg=dec), when, f + 1)
        data, catname = cam.render(exp)
        fits.PrimaryHDU(data, cam.header(exp, catname)).writeto(p, overwrite=True)
        t0 = time.perf_counter()
        res = analyse(
            p,
            detector="VIS",
            filter="CLEAR",
            exposure_s=30.0,
            taken_at=when,
            masters={},
            catalogue=catalogue,
            out_dir=None,
        )
        dt = time.perf_counter() - t0
        images.append(
            {
                "failure": res.failure,
                "method": res.solve_method,
                "n_matched": res.n_matched,
                "wcs_rms_arcsec": res.wcs_rms_arcsec,
                "seconds": round(dt, 3),
                "afterglow_on_frame": bool(exp.transients),
            }
        )
        if f == 0 and inject and tycho is not None:
            r2 = analyse(
                p,
                detector="VIS",
                filter="CLEAR",
                exposure_s=30.0,
                taken_at=when,
                masters={},
                catalogue=tycho,
                out_dir=None,
            )
            tycho_only = {"solved": r2.failure is None, "failure": r2.failure, "n_matched": r2.n_matched}
        if res.wcs is None or res.stars is None or res.mid_time is None:
            continue
        w = res.sources_world
        found = cand.new_sources(
            w["ra"],
            w["dec"],
            w["mag"],
            w["mag_err"],
            w["snr"],
            w["pos_err"],
            res.stars.ra_deg,
            res.stars.dec_deg,
            res.stars.mag,
            circle,
            image=p.name,
            taken_at=res.mid_time,
            filter="CLEAR",
            min_snr=cfg.candidate_min_snr,
        )
        cand.update(tracks, found, res.covers, link_arcsec=cfg.link_arcsec)
        p.unlink()
    reported = [t for t in tracks if t.confidence(trigger) >= cfg.candidate_threshold]
    out: dict[str, Any] = {
        "field": k,
        "ra_deg": round(ra, 5),
        "dec_deg": round(dec, 5),
        "injected": inject,
        "images": images,
        "candidates": len(reported),
        "tycho2_only": tycho_only,
    }
    if inject:
        out["truth"] = {"ra_deg": true[0], "dec_deg": true[1]}
        out["on_frames"] = sum(1 for i in images if i["afterglow_on_frame"])
        if reported:
            best = max(reported, key=lambda t: t.confidence(trigger))
            bra, bdec, err = best.position
            out["error_arcsec"] = float(cand.separation_arcsec(bra, bdec, *true))
            out["reported_error_arcsec"] = err
            out["confidence"] = best.confidence(trigger)
            out["magnitude"] = best.latest().mag
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fields", type=int, default=20)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    from pyros_analyzer.catalogue import Tycho2Index

    tycho = Tycho2Index()
    t0 = time.time()
    fields: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pyros-acc-") as d:
        for k in range(args.fields):
            for inject in (True, False):
                r = run_field(
                    k,
                    seed=args.seed,
                    frames=args.frames,
                    inject=inject,
                    tmp=Path(d),
                    tycho=tycho if tycho.paths else None,
                )
                fields.append(r)
                print(
                    json.dumps(
                        {
                            kk: r.get(kk)
                            for kk in ("field", "injected", "candidates", "error_arcsec", "on_frames")
                        }
                    ),
                    flush=True,
                )
    inj = [f for f in fields if f["injected"]]
    covered = [f for f in inj if f["on_frames"] >= 2]
    ok = [f for f in covered if f.get("error_arcsec") is not None and f["error_arcsec"] <= 1.0]
    errs = np.array([f["error_arcsec"] for f in inj if f.get("error_arcsec") is not None])
    none = [f for f in fields if not f["injected"]]
    imgs = [i for f in fields for i in f["images"]]
    ty = [f["tycho2_only"] for f in inj if f["tycho2_only"] is not None]
    summary = {
        "fields": len(inj),
        "afterglow_on_two_frames_or_more": len(covered),
        "found_within_1_arcsec": len(ok),
        "success_rate": round(len(ok) / len(covered), 4) if covered else None,
        "error_arcsec": {
            "median": float(np.median(errs)) if errs.size else None,
            "p90": float(np.percentile(errs, 90)) if errs.size else None,
            "max": float(errs.max()) if errs.size else None,
            "all": [round(float(e), 4) for e in errs],
        },
        "no_injection_fields": len(none),
        "no_injection_fields_with_a_candidate": sum(1 for f in none if f["candidates"] > 0),
        "images": len(imgs),
        "images_solved": sum(1 for i in imgs if i["failure"] is None),
        "seconds_per_image_median": float(np.median([i["seconds"] for i in imgs])) if imgs else None,
        "baseline_tycho2_only_solved": f"{sum(1 for t in ty if t['solved'])}/{len(ty)}",
    }
    doc = {
        "benchmark": "analyzer_accuracy",
        "commit": commit(),
        "arguments": vars(args),
        "machine": machine(),
        "time": datetime.now(UTC).isoformat(),
        "wall_s": round(time.time() - t0, 1),
        "summary": summary,
        "fields": fields,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, out)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
