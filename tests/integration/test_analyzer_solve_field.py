"""astrometry.net for real: a wide simulated field solved by solve-field with the Tycho-2 index files,
hinted by the header WCS, and its catalogue from query-starkd; within an arcsecond of the true WCS."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from pyros_analyzer.catalogue import Tycho2Index
from pyros_analyzer.domain.astrometry import TanWcs
from pyros_analyzer.pipeline import analyse
from pyros_common.clock import SimulatedClock
from pyros_simulators import VIS, Camera, ExposureRequest, Sky

pytestmark = pytest.mark.integration
# 2048 px at 1.5"/px: 51', wide enough for index-4108's 30' quads (the GFT's 13' is not)
WIDE = dataclasses.replace(VIS, shape=(2048, 2048), pixel_scale_arcsec=1.5, seeing_fwhm_arcsec=3.0)
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def test_solve_field_solves_a_wide_field_within_an_arcsecond(tmp_path: Path) -> None:
    assert shutil.which("solve-field"), "astrometry.net missing: scripts/astrometry.sh ensure"
    tycho = Tycho2Index()
    assert tycho.paths, "no Tycho-2 index files: scripts/astrometry.sh ensure"
    cam = Camera(SimulatedClock(START), WIDE, sky=Sky(site=None, seed=0))
    p = tmp_path / "wide.fits"
    exp = cam.observe(ExposureRequest(10.0, p, ra_deg=150.3, dec_deg=20.2), START, 1)
    data, cat = cam.render(exp)
    h = cam.header(exp, cat)
    fits.PrimaryHDU(data, h).writeto(p)
    res = analyse(
        p,
        detector="VIS",
        filter="r",
        exposure_s=10.0,
        taken_at=START,
        masters={},
        catalogue=tycho,
        out_dir=tmp_path / "out",
    )
    assert res.failure is None, (res.failure, res.problems)
    assert res.solve_method == "solve-field:Tycho-2", (res.solve_method, res.problems)
    assert res.wcs is not None
    true = TanWcs.from_header(h, "T")
    x, y = np.array([0.0, 1024.0, 2047.0, 300.0]), np.array([0.0, 1024.0, 2047.0, 1800.0])
    r1, d1 = res.wcs.pix2world(x, y)
    r2, d2 = true.pix2world(x, y)
    err = np.hypot((r1 - r2) * np.cos(np.radians(d1)), d1 - d2) * 3600.0
    assert float(err.max()) < 1.0, err
    assert fits.getheader(tmp_path / "out" / "wide.cal.fits")["WCSMETH"] == "solve-field:Tycho-2"
