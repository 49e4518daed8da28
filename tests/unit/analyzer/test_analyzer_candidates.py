"""Candidates: the afterglow found within 1" and fading; a field without one gives none."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from analyzer_factories import START, Rig
from pyros_analyzer.catalogue import SimulatedSkyCatalogue
from pyros_analyzer.domain import candidates as cand
from pyros_analyzer.pipeline import analyse


def _run(
    rig: Rig, tmp_path: Path, ra: float, dec: float, circle: cand.ErrorCircle, n: int = 3
) -> list[cand.Track]:
    tracks: list[cand.Track] = []
    for k in range(n):
        when = START + timedelta(seconds=120 + 60 * k)
        s = rig.shot(ra, dec, when=when)
        res = analyse(
            s.path,
            detector="VIS",
            filter="CLEAR",
            exposure_s=30.0,
            taken_at=when,
            masters={},
            catalogue=SimulatedSkyCatalogue(rig.sky),
            out_dir=tmp_path / "out",
        )
        assert res.failure is None, res.failure
        w = res.sources_world
        assert res.stars is not None and res.mid_time is not None
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
            image=str(s.path),
            taken_at=res.mid_time,
            filter="CLEAR",
        )
        cand.update(tracks, found, res.covers)
    return tracks


def test_the_afterglow_is_found_within_an_arcsecond_and_fades(rig: Rig, tmp_path: Path) -> None:
    ra, dec = 150.3, 20.2
    true = (150.3 + 0.01, 20.2 - 0.008)
    rig.afterglow(*true, mag60=14.5)
    circle = cand.ErrorCircle(ra, dec, 0.05)
    tracks = _run(rig, tmp_path, ra, dec, circle)
    t0 = START - timedelta(seconds=60)
    best = max(tracks, key=lambda t: t.confidence(t0))
    bra, bdec, err = best.position
    miss = float(cand.separation_arcsec(bra, bdec, *true))
    assert miss < 1.0, miss
    assert 0 < err < 1.0
    slope, slope_err = best.fading(t0)
    assert slope > 3 * slope_err  # fainter in every later image
    assert best.confidence(t0) > 0.65
    assert len(best.detections) == best.covering_images >= 2  # every image that covers it detects it


def test_no_injection_no_candidate(rig: Rig, tmp_path: Path) -> None:
    tracks = _run(rig, tmp_path, 150.3, 20.2, cand.ErrorCircle(150.3, 20.2, 0.05), n=2)
    t0 = START - timedelta(seconds=60)
    assert all(t.confidence(t0) < 0.65 for t in tracks), [t.detections for t in tracks]


def test_a_catalogue_star_is_not_a_candidate_unless_much_brighter() -> None:
    circle = cand.ErrorCircle(10.0, 0.0, 0.1)
    one = np.array([10.0])
    zero = np.array([0.0])
    common = dict(image="a", taken_at=START, filter="r")

    def at(mag: float) -> list[cand.Detection]:
        return cand.new_sources(
            one,
            zero,
            np.array([mag]),
            np.array([0.02]),
            np.array([50.0]),
            np.array([0.1]),
            one,
            zero,
            np.array([16.0]),
            circle,
            **common,
        )  # type: ignore[arg-type]

    assert at(16.1) == []
    assert len(at(14.0)) == 1  # 2 mag brighter than the catalogue allows
    outside = cand.new_sources(
        np.array([11.0]),
        zero,
        np.array([14.0]),
        np.array([0.02]),
        np.array([50.0]),
        np.array([0.1]),
        one,
        zero,
        np.array([16.0]),
        circle,
        **common,
    )  # type: ignore[arg-type]
    assert outside == []


def test_one_detection_stays_below_the_threshold() -> None:
    d = cand.Detection("a", START, 1.0, 1.0, 0.1, 15.0, 0.01, "r", 100.0)
    tr = cand.Track([d], 1)
    assert tr.confidence(START - timedelta(seconds=60)) == pytest.approx(cand.SINGLE_DETECTION_MAX)


def test_a_colour_is_not_a_fading() -> None:
    t0 = START - timedelta(seconds=60)
    # VIS r and NIR J at (nearly) the same time: 1.5 mag apart, no fading information
    r = cand.Detection("a", START, 1.0, 1.0, 0.1, 15.0, 0.01, "r", 100.0)
    j = cand.Detection("b", START + timedelta(seconds=1), 1.0, 1.0, 0.1, 16.5, 0.01, "J", 100.0)
    tr = cand.Track([r, j], 2)
    assert tr.fading(t0) == (0.0, float("inf"))
    assert tr.confidence(t0) == pytest.approx(0.7)  # seen twice, not (yet) seen fading
    later = cand.Detection("c", START + timedelta(seconds=60), 1.0, 1.0, 0.1, 15.75, 0.01, "r", 100.0)
    tr.detections.append(later)
    tr.covering_images = 3
    slope, err = tr.fading(t0)
    assert slope == pytest.approx(2.5, abs=0.01) and slope > 3 * err
    assert tr.confidence(t0) > 0.95
