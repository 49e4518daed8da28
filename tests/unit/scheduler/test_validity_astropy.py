"""Independent check of a planned night with astropy's full AltAz transform.

The plan comes from the mapping (our vectorised visibility) and the kernel; here every
scheduled sequence's target altitude is recomputed with SkyCoord.transform_to(AltAz) at its
start, middle and end, and must meet the sequence's altitude and airmass limits (0.1° allowed
for the 60 s grid and interpolation; AltAz without pressure: no refraction, as the constraint).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time
from pyros_common._iers import configure_offline_iers
from pyros_common.domain.programs.quotas import Grade
from pyros_common.domain.requests.document import import_document
from pyros_common.domain.sky.sites import SITES
from pyros_scheduler.kernel import validate
from pyros_scheduler.planner import Program, build_input, solve

configure_offline_iers()  # offline IERS tables before any astropy time transform

ROOT = Path(__file__).resolve().parents[3]
TOL_DEG = 0.1


def test_every_scheduled_sequence_meets_its_altitude_and_airmass_with_astropy() -> None:
    site = SITES["gft-spm"]
    data = json.loads((ROOT / "examples" / "workload.json").read_text())
    reqs = [import_document(d, user="t", id=d["name"]) for d in data["requests"]]
    programs = {
        p["code"]: Program(p["code"], Grade(p["grade"]), p["quota_percent"]) for p in data["programs"]
    }
    night = dt.date(2026, 12, 15)
    for n_tel in (1, 2):
        names = tuple(f"T{k + 1}" for k in range(n_tel))
        ni = build_input(reqs, site=site, night=night, programs=programs, n_telescopes=n_tel)
        plan = solve(ni, night=night, site=site, telescopes=names)
        assert validate(ni.kernel, plan.result) == []
        assert len(plan.scheduled) >= 20
        loc = EarthLocation.from_geodetic(site.lon_deg * u.deg, site.lat_deg * u.deg, site.height_m * u.m)
        ra, dec, when, rows = [], [], [], []
        for s in plan.scheduled:
            assert ni.dusk <= s.start < s.end <= ni.dawn
            for t in (s.start, s.start + (s.end - s.start) / 2, s.end):
                ra.append(s.info.ra_deg)
                dec.append(s.info.dec_deg)
                when.append(t)
                rows.append(s)
        times = Time(when)
        altaz = SkyCoord(np.array(ra) * u.deg, np.array(dec) * u.deg).transform_to(
            AltAz(obstime=times, location=loc)
        )
        alts = altaz.alt.deg
        for s, alt in zip(rows, alts, strict=True):
            c = s.info.constraints
            assert alt >= c.min_altitude_deg - TOL_DEG, (s.request, s.sequence, alt)
            if c.max_airmass is not None:
                airmass = 1.0 / math.sin(math.radians(alt))
                limit = 1.0 / math.sin(math.radians(c.airmass_altitude_deg - TOL_DEG))
                assert airmass <= limit, (s.request, s.sequence, airmass)
