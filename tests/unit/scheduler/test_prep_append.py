"""Prep.of on a pool that only grew (the service's alert path) equals a fresh preparation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pyros_scheduler.kernel import KernelInput, KSequence
from pyros_scheduler.kernel._state import Prep


def _seqs(rng: np.random.Generator, n: int, start: int, shared_request: bool) -> list[KSequence]:
    out = []
    for k in range(start, start + n):
        wins = []
        for _ in range(int(rng.integers(0, 3))):
            a = float(rng.uniform(-2000, 30_000))
            wins.append((a, a + float(rng.uniform(100, 9000))))
        req = f"r{rng.integers(0, 4)}" if shared_request else f"q{k}"
        out.append(
            KSequence(
                f"s{k}",
                float(rng.uniform(300, 3000)),
                float(rng.integers(1, 10)),
                tuple(sorted(wins)),
                mandatory=bool(rng.random() < 0.3),
                request_id=req if rng.random() < 0.7 else "",
                all_or_nothing=bool(rng.random() < 0.2),
                program=f"p{rng.integers(0, 2)}",
                decay_ref_s=100.0 if rng.random() < 0.2 else None,
                decay_index=1.0,
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(0, 12), st.integers(1, 5), st.booleans())
def test_appended_preparation_equals_a_fresh_one(seed: int, n_old: int, n_new: int, shared: bool) -> None:
    rng = np.random.default_rng(seed)
    old_seqs = _seqs(rng, n_old, 0, shared)
    seqs = old_seqs + _seqs(rng, n_new, n_old, shared)
    night = (0.0, 30_000.0)
    old = Prep.of(KernelInput(old_seqs, night))
    got = Prep.of(KernelInput(seqs, night), old)
    want = Prep(seqs, night)
    for name in ("ids", "dur", "w", "prog", "ptr", "_wlo", "_whi", "static", "tc", "group", "essential"):
        assert getattr(got, name) == getattr(want, name), name
    assert sorted(map(sorted, got.groups)) == sorted(map(sorted, want.groups))
    for name in ("dur_a", "w_a", "wseq", "wlo", "whi", "winlen", "last_end"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
