"""The vectorised paths of the kernel agree with the scalar ones."""

import numpy as np
from pyros_scheduler.kernel import GreatCircleTransition, KernelInput, KSequence, schedule
from pyros_scheduler.kernel._state import Prep, State


def _instance(n: int, seed: int) -> tuple[KernelInput, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-30, 80, n)
    seqs = []
    for k in range(n):
        a = float(rng.uniform(0, 30000))
        seqs.append(
            KSequence(f"s{k}", float(rng.uniform(300, 1800)), float(rng.integers(1, 11)), ((a, a + 9000.0),))
        )
    filters = [("g", "r", "i")[k % 3] for k in range(n)]
    tr = GreatCircleTransition(
        ra, dec, slew_rate_deg_s=1.0, settle_s=5.0, filters=filters, filter_change_s=60.0
    )
    return KernelInput(seqs, (0.0, 40000.0), transition=tr), ra, dec


def test_pair_costs_match_cost() -> None:
    inp, _, _ = _instance(40, 1)
    tr = inp.transition
    assert isinstance(tr, GreatCircleTransition)
    a = np.repeat(np.arange(40), 40)
    b = np.tile(np.arange(40), 40)
    want = np.array([tr.cost(int(x), int(y)) for x, y in zip(a, b, strict=True)])
    np.testing.assert_allclose(tr.pair_costs(a, b), want, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(tr.costs_from(3, b[:40]), want[3 * 40 : 4 * 40], rtol=1e-12, atol=1e-9)


def test_candidates_for_matches_per_gap_path() -> None:
    for seed in range(5):
        inp, _, _ = _instance(120, seed)
        res = schedule(inp, iterations=0)
        st = State(Prep.of(inp), inp)
        for pl in res.placements:
            st.put_back(st.p.index[pl.id], pl.telescope, pl.start_s)
        eligible = np.ones(st.p.n, dtype=bool)
        gaps = st.free_gaps(0.0)
        fast = st.candidates_for(gaps, eligible)
        st.pairs = None  # force the per-gap path
        slow = st.candidates_for(gaps, eligible)
        np.testing.assert_array_equal(fast, slow)


def test_adaptive_improvement_never_worse_than_construction() -> None:
    for seed in range(5):
        inp, _, _ = _instance(150, seed)
        assert schedule(inp).objective >= schedule(inp, iterations=0).objective - 1e-6
