"""Who holds a left-out sequence's time (``State._first_holder``), and the collector pause."""

from __future__ import annotations

import bisect
import gc
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyros_scheduler.kernel import KernelInput, KSequence, schedule, without_cycle_collector
from pyros_scheduler.kernel import _state as state_module
from pyros_scheduler.kernel._state import Prep, State


def _state(rng: np.random.Generator, disjoint: bool) -> State:
    n = int(rng.integers(2, 40))
    tels = int(rng.integers(1, 3))
    seqs = [
        KSequence(f"s{k}", float(rng.integers(10, 300)), float(rng.integers(1, 5)), ((0.0, 20000.0),))
        for k in range(n)
    ]
    inp = KernelInput(seqs, (0.0, 20000.0), tels)
    s = State(Prep.of(inp), inp)
    order = rng.permutation(n).tolist()
    for tel in range(tels):
        t = 0.0
        for k in order[tel::tels][: max(1, n // 3)]:
            t = t + float(rng.integers(0, 3)) if disjoint else float(rng.integers(0, 15000))
            pos = bisect.bisect_left(s.starts[tel], t)
            s.insert(k, tel, pos, t)
            if disjoint:
                t += s.p.dur[k]
    return s


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31), st.booleans(), st.booleans())
def test_the_first_holder_is_the_one_every_pair_test_names(seed: int, disjoint: bool, table: bool) -> None:
    """Binary searches and range minima (``table``: the path of many windows) and the direct
    test of few windows give what testing every (window, placement) pair gives: the
    highest-weight placement overlapping each window (overlapping placements, never in a valid
    plan, take the pairwise path)."""
    rng = np.random.default_rng(seed)
    s = _state(rng, disjoint)
    holders = np.asarray(sorted(s.where, key=lambda k: -s.p.w[k]), dtype=np.intp)
    # Whole seconds, placements often back to back: windows meet their edges exactly.
    ends = [float(e) for tel in s.ends for e in tel] + [float(a) for tel in s.starts for a in tel]
    wlo = np.asarray(
        [rng.choice(ends) if rng.random() < 0.5 else float(rng.integers(-500, 20000)) for _ in range(60)]
    )
    whi = np.asarray([w + float(rng.integers(0, 3000)) for w in wlo])
    t0 = np.asarray([s.where[int(k)][1] for k in holders])
    t1 = t0 + s.p.dur_a[holders]
    over = (wlo[:, None] < t1[None, :]) & (whi[:, None] > t0[None, :])
    expected = np.where(over.any(axis=1), over.argmax(axis=1), holders.size)
    with mock.patch.object(state_module, "DENSE_HOLDER_TESTS", 0 if table else 10**9):
        assert s._first_holder(holders, wlo, whi).tolist() == expected.tolist()


def test_the_collector_is_paused_during_a_plan_and_running_after() -> None:
    seen: list[bool] = []

    @without_cycle_collector
    def inner() -> None:
        seen.append(gc.isenabled())

    @without_cycle_collector
    def outer() -> None:
        inner()  # nested: the inner call must not resume the collector
        seen.append(gc.isenabled())
        raise RuntimeError("boom")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        outer()
    assert seen == [False, False] and gc.isenabled()
    schedule(KernelInput([KSequence("a", 60.0, 1.0, ((0.0, 600.0),))], (0.0, 600.0)))
    assert gc.isenabled()
