"""Masters by sigma-clipped combination, and their application, against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analyzer_factories import START, Rig
from pyros_analyzer.domain.calibration import (
    CalibrationError,
    calibrate,
    master_bias,
    master_dark_rate,
    master_flat,
    sigma_clipped_mean,
)
from pyros_analyzer.masters import MasterStore
from pyros_simulators.imaging import flat_pattern


def test_sigma_clipping_rejects_a_cosmic_ray() -> None:
    rng = np.random.default_rng(1)
    stack = (100 + rng.standard_normal((7, 16, 16))).astype(np.float32)
    stack[3, 5, 5] = 5000.0
    out = sigma_clipped_mean(stack)
    assert abs(out[5, 5] - 100.0) < 2.0
    assert abs(float(np.mean(stack[:, 5, 5])) - 100.0) > 500  # a plain mean would not


def test_masters_recover_bias_dark_and_flat(rig: Rig) -> None:
    c = rig.cam.config
    biases = [rig.shot(0, 0, exposure_s=0.0, image_type="bias").data for _ in range(5)]
    darks = [rig.shot(0, 0, exposure_s=300.0, image_type="dark").data for _ in range(5)]
    flats = [rig.shot(0, 0, exposure_s=4.0, image_type="flat").data for _ in range(5)]
    bias = master_bias(biases)
    assert abs(float(np.median(bias)) - c.bias_adu) < 1.0
    dark = master_dark_rate(darks, [300.0] * 5, bias)
    truth_rate = rig.cam.dark_e_per_s(rig.cam.temperature_c) / c.gain_e_per_adu
    assert float(np.median(dark)) == pytest.approx(truth_rate, abs=0.01)
    flat = master_flat(flats, [4.0] * 5, bias, dark)
    true_flat = flat_pattern(c.shape, vignetting=c.vignetting, prnu=c.prnu, seed=c.seed)
    true_flat /= np.median(true_flat)
    # per-pixel photon noise of 5 x 20000 e- is ~0.3 %; the vignetting is 15 %
    assert float(np.std(flat - true_flat)) < 0.006
    assert float(flat[0, 0]) < 0.9 < float(flat[512, 512])


def test_calibrate_is_the_textbook_expression() -> None:
    rng = np.random.default_rng(2)
    raw = rng.integers(900, 2000, (32, 32)).astype(np.uint16)
    bias = rng.normal(1000, 1, (32, 32)).astype(np.float32)
    dark = rng.normal(0.1, 0.01, (32, 32)).astype(np.float32)
    flat = rng.normal(1.0, 0.05, (32, 32)).astype(np.float32)
    out, steps = calibrate(raw, exposure_s=30.0, bias=bias, dark_rate=dark, flat=flat)
    assert steps == ["bias", "dark", "flat"]
    np.testing.assert_allclose(out, (raw - bias - 30.0 * dark) / flat, rtol=1e-5)
    _, none = calibrate(raw, exposure_s=30.0)
    assert none == []
    with pytest.raises(CalibrationError, match=r"master bias .* the image"):
        calibrate(raw, exposure_s=1.0, bias=bias[:16])


def test_store_builds_versions_and_serves_the_latest(rig: Rig, tmp_path: Path) -> None:
    from astropy.io import fits

    store = MasterStore(tmp_path / "MASTERS", min_frames=3)
    built = []
    for _ in range(3):
        s = rig.shot(0, 0, exposure_s=0.0, image_type="bias")
        built.append(store.add_frame("bias", "VIS", START, s.path, 0.0))
    assert built[:2] == [None, None] and built[2] is not None
    m = store.latest("bias", "VIS", "2026-03-01")
    assert m is not None and m.n_frames == 3 and m.night == "2026-02-28"
    assert store.latest("bias", "VIS", "2026-02-27") is None  # nothing from before that night
    h = fits.getheader(store.path("bias", "VIS", "2026-02-28"))
    assert h["MASTERTY"] == "bias" and h["NCOMBINE"] == 3 and h["SRC1"].endswith(".fits")
    with pytest.raises(CalibrationError, match="no master bias"):
        store.build("dark", "NIR", "2026-02-28", [(built_path, 10.0) for built_path in [s.path]])


def test_an_image_is_found_after_its_active_folder_settled(tmp_path: Path) -> None:
    from pyros_analyzer.analyzer import locate

    settled = tmp_path / "PRODUCED_DATA" / "r-1" / "r-1-s1" / "VIS" / "a.fits"
    settled.parent.mkdir(parents=True)
    settled.write_bytes(b"x")
    assert locate(tmp_path, "PRODUCED_DATA/r-1_active/r-1-s1_active/VIS/a.fits") == settled
    assert locate(tmp_path, "PRODUCED_DATA/r-1/r-1-s1/VIS/a.fits") == settled
    gone = locate(tmp_path, "PRODUCED_DATA/r-2_active/b.fits")
    assert not gone.exists() and gone.name == "b.fits"
