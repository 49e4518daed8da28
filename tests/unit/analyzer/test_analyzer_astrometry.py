"""The TAN projection against astropy, and the WCS refined from a frame with a pointing error."""

from __future__ import annotations

import numpy as np
import pytest
from analyzer_factories import Rig
from pyros_analyzer.catalogue import SimulatedSkyCatalogue, Tycho2Index
from pyros_analyzer.domain.astrometry import SolveFailed, TanWcs, deproject, project, refine
from pyros_analyzer.domain.calibration import calibrate
from pyros_analyzer.domain.sources import extract


def _sep(r1: np.ndarray, d1: np.ndarray, r2: np.ndarray, d2: np.ndarray) -> np.ndarray:
    return np.hypot((r1 - r2) * np.cos(np.radians(d1)), d1 - d2) * 3600.0


def test_projection_round_trip_and_astropy_agree(rig: Rig) -> None:
    from astropy.wcs import WCS

    s = rig.shot(210.0, 54.0)
    ours = TanWcs.from_header(s.header)
    theirs = WCS(s.header)
    x, y = np.array([0.0, 511.5, 1023.0, 100.0]), np.array([0.0, 511.5, 1023.0, 900.0])
    ra, dec = ours.pix2world(x, y)
    ra2, dec2 = theirs.all_pix2world(x, y, 0)
    assert float(np.max(_sep(ra, dec, ra2, dec2))) < 1e-6
    xi, eta = project(ra, dec, 210.0, 54.0)
    back = deproject(xi, eta, 210.0, 54.0)
    assert float(np.max(_sep(back[0], back[1], ra, dec))) < 1e-7


def test_refine_finds_the_true_wcs_despite_the_pointing_error(rig: Rig) -> None:
    s = rig.shot(150.3, 20.2)
    guess, true = TanWcs.from_header(s.header), TanWcs.from_header(s.header, "T")
    x, y = np.array([0.0, 512.0, 1023.0]), np.array([0.0, 700.0, 1023.0])
    before = _sep(*guess.pix2world(x, y), *true.pix2world(x, y))
    assert float(before.min()) > 50.0  # the header is off by arcminutes: a solve is needed
    img, _ = calibrate(s.data, exposure_s=30.0)
    src = extract(img, gain_e_per_adu=1.5)
    stars = SimulatedSkyCatalogue(rig.sky).cone(150.3, 20.2, 0.25)
    sol = refine(src.x, src.y, src.flux, stars.ra_deg, stars.dec_deg, stars.mag, guess, (1024, 1024))
    after = _sep(*sol.wcs.pix2world(x, y), *true.pix2world(x, y))
    assert float(after.max()) < 0.1, after
    assert sol.n_matched >= 10 and sol.rms_arcsec < 0.1
    assert sol.rotation_deg == pytest.approx(float(s.header["TRUEROT"]), abs=0.01)


def test_no_catalogue_stars_is_a_clear_failure(rig: Rig) -> None:
    s = rig.shot(150.3, 20.2)
    img, _ = calibrate(s.data, exposure_s=30.0)
    src = extract(img, gain_e_per_adu=1.5)
    guess = TanWcs.from_header(s.header)
    e = np.empty(0)
    with pytest.raises(SolveFailed, match="too few catalogue stars"):
        refine(src.x, src.y, src.flux, e, e, e, guess, (1024, 1024))
    # stars from somewhere else entirely: no offset collects the votes
    stars = SimulatedSkyCatalogue(rig.sky).cone(150.3, 20.2, 0.25)
    with pytest.raises(SolveFailed, match=r"no match|too few"):
        refine(
            src.x,
            src.y,
            src.flux,
            stars.ra_deg + 0.3,
            stars.dec_deg,
            stars.mag,
            guess,
            (1024, 1024),
            max_offset_arcmin=2.0,
        )


def test_tycho2_through_query_starkd() -> None:
    t = Tycho2Index()
    if not t.paths:
        pytest.skip("no Tycho-2 index files (scripts/astrometry.sh ensure)")
    s = t.cone(150.3, 20.2, 0.4)
    assert 5 <= len(s) <= 40
    assert float(np.max(s.mag)) < 13.5  # Tycho-2 stops near V = 12
