"""The simulated read-out (``digitise``): the noise has Poisson's mean and variance at every level,
saturates at the full well, and keeps Poisson exactly where read noise cannot hide it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyros_simulators.imaging import GAUSSIAN_SKEW_MAX, digitise, poisson_skew_bound

N = 200_000


def _frame(lam: float, **kw: float) -> np.ndarray:
    cfg = {"read_noise_e": 5.0, "gain_e_per_adu": 1.5, "bias_adu": 1000.0, "full_well_e": 100_000.0} | kw
    electrons = np.full((N // 500, 500), lam, dtype=np.float32)
    return digitise(electrons, rng=np.random.default_rng(int(lam * 1000) % 2**32), **cfg).astype(np.float64)


@settings(max_examples=25, deadline=None)
@given(lam=st.floats(0.0, 50_000.0), rn=st.sampled_from([3.0, 5.0, 15.0]))
def test_mean_and_variance_are_poisson_plus_read_noise(lam: float, rn: float) -> None:
    gain, bias = 1.5, 1000.0
    adu = _frame(lam, read_noise_e=rn)
    sigma = math.sqrt(lam + rn * rn) / gain
    # the mean within 5 standard errors; the variance within 3 % (plus the rounding's 1/12)
    assert abs(adu.mean() - (lam / gain + bias)) < 5 * sigma / math.sqrt(adu.size) + 0.02
    assert adu.var() == pytest.approx(sigma**2 + 1 / 12, rel=0.03)


def test_charge_saturates_at_the_full_well_before_read_out() -> None:
    adu = _frame(300_000.0, full_well_e=60_000.0)
    assert adu.mean() == pytest.approx(60_000.0 / 1.5 + 1000.0, abs=0.05)
    assert adu.std() == pytest.approx(5.0 / 1.5, rel=0.05)  # read noise alone


def test_without_read_noise_to_hide_it_the_counts_are_exactly_poisson() -> None:
    assert poisson_skew_bound(0.5) > GAUSSIAN_SKEW_MAX >= poisson_skew_bound(3.0)
    counts = _frame(2.0, read_noise_e=0.0, gain_e_per_adu=1.0, bias_adu=0.0)
    assert np.all(counts == np.rint(counts))
    # P(0) = e^-2 and P(1) = 2 e^-2 for Poisson(2); a Gaussian of the same moments is far off
    assert np.mean(counts == 0) == pytest.approx(math.exp(-2), abs=0.005)
    assert np.mean(counts == 1) == pytest.approx(2 * math.exp(-2), abs=0.005)
