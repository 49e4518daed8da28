"""The frame-axis median of the calibration masters is np.median's, exactly, for any stack."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pyros_analyzer.domain.calibration import median_of_frames, sigma_clipped_mean


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    levels=st.integers(1, 6),  # few distinct values: ties everywhere
)
def test_median_of_frames_is_numpys(n: int, seed: int, levels: int) -> None:
    rng = np.random.default_rng(seed)
    stack = rng.integers(0, levels + 1, size=(n, 7, 9)).astype(np.float32) * np.float32(1.5)
    stack += rng.normal(0, 1, stack.shape).astype(np.float32) * np.float32(seed % 2)
    got = median_of_frames(stack)
    assert got.dtype == np.float32 and got.shape == stack.shape[1:]
    np.testing.assert_array_equal(got, np.median(stack, axis=0).astype(np.float32))
    assert np.array_equal(stack, stack.copy())  # the input is left alone


def test_a_stack_with_nan_follows_numpy() -> None:
    stack = np.ones((5, 3, 3), dtype=np.float32)
    stack[2, 1, 1] = np.nan
    np.testing.assert_array_equal(median_of_frames(stack), np.median(stack, axis=0))


def test_a_cosmic_ray_in_one_frame_is_clipped() -> None:
    rng = np.random.default_rng(1)
    stack = rng.normal(1000, 5, (5, 40, 40)).astype(np.float32)
    clean = sigma_clipped_mean(stack)
    stack[3, 20, 20] = 60_000.0
    hit = sigma_clipped_mean(stack)
    assert abs(float(hit[20, 20]) - 1000.0) < 15.0
    np.testing.assert_allclose(np.delete(hit.ravel(), 20 * 40 + 20), np.delete(clean.ravel(), 20 * 40 + 20))
