"""Scheduling kernel: properties on random instances, one example per reason, incremental runs."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyros_scheduler.kernel import (
    GreatCircleTransition,
    KernelInput,
    KSequence,
    MatrixTransition,
    Reason,
    objective,
    reschedule,
    schedule,
    validate,
)

NIGHT = (0.0, 36_000.0)


def seq(sid: str, dur: float, weight: float, *windows: tuple[float, float], **kw: object) -> KSequence:
    return KSequence(sid, dur, weight, tuple(windows), **kw)  # type: ignore[arg-type]


@st.composite
def instances(draw: st.DrawFn) -> KernelInput:
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    seqs = []
    for k in range(n):
        dur = float(rng.uniform(60, 3000))
        wins = []
        for _ in range(int(rng.integers(0, 3))):
            c = float(rng.uniform(-4000, 40_000))
            h = float(rng.uniform(100, 12_000))
            wins.append((c - h, c + h))
        req = f"r{rng.integers(0, max(1, n // 3))}" if rng.random() < 0.5 else ""
        seqs.append(
            KSequence(
                f"s{k}",
                dur,
                float(rng.integers(1, 10)),
                tuple(sorted(wins)),
                mandatory=bool(req) and rng.random() < 0.3,
                request_id=req,
                all_or_nothing=bool(req) and rng.random() < 0.2,
                program=f"p{rng.integers(0, 3)}",
            )
        )
    quotas = {"p0": float(rng.uniform(0, 20_000))} if rng.random() < 0.5 else {}
    tr = GreatCircleTransition(
        rng.uniform(0, 360, n),
        rng.uniform(-30, 80, n),
        slew_rate_deg_s=float(rng.uniform(0.2, 3)),
        settle_s=15,
    )
    return KernelInput(seqs, NIGHT, n_telescopes=draw(st.integers(1, 3)), quotas_s=quotas, transition=tr)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(0, 3))
def test_random_plans_are_feasible(inp: KernelInput, seed: int) -> None:
    res = schedule(inp, seed=seed)
    assert validate(inp, res) == []
    assert abs(res.objective - objective(inp, res.placements)) < 1e-6 * max(1.0, res.objective)
    # Independent re-check of the core rules, not through validate().
    by_id = {s.id: s for s in inp.sequences}
    for p in res.placements:
        s = by_id[p.id]
        assert NIGHT[0] <= p.start_s and p.end_s <= NIGHT[1]
        assert any(lo - 1e-6 <= p.start_s and p.end_s <= hi + 1e-6 for lo, hi in s.windows)
    index = {s.id: k for k, s in enumerate(inp.sequences)}
    for tel in range(inp.n_telescopes):
        ps = sorted((p for p in res.placements if p.telescope == tel), key=lambda p: p.start_s)
        for a, b in itertools.pairwise(ps):
            assert b.start_s >= a.end_s + inp.transition.cost(index[a.id], index[b.id]) - 1e-6
    for prog, q in inp.quotas_s.items():
        assert sum(p.end_s - p.start_s for p in res.placements if by_id[p.id].program == prog) <= q + 1e-6
    placed = {p.id for p in res.placements}
    for s in inp.sequences:
        assert (s.id in placed) != (s.id in res.unscheduled)
        if s.request_id and (s.mandatory or s.all_or_nothing) and s.id not in placed:
            siblings = [t for t in inp.sequences if t.request_id == s.request_id]
            if any(t.mandatory or t.all_or_nothing for t in siblings if t.id == s.id):
                assert not any(t.id in placed for t in siblings)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.floats(0, 36_000), st.floats(0, 30_000), st.floats(600, 3000))
def test_random_reschedules_are_feasible(
    inp: KernelInput, now: float, alert_at: float, alert_len: float
) -> None:
    alert = seq("alert", alert_len, 1000.0, (alert_at, alert_at + alert_len + 4000))
    n = len(inp.sequences)
    tr = MatrixTransition(np.full((n + 1, n + 1), 30.0) - 30.0 * np.eye(n + 1))
    base = KernelInput(inp.sequences, NIGHT, inp.n_telescopes, inp.quotas_s, tr)
    res = schedule(base)
    new = KernelInput([*inp.sequences, alert], NIGHT, inp.n_telescopes, inp.quotas_s, tr)
    res2 = reschedule(res, new, now)
    assert validate(new, res2, now_s=now) == []
    # What ran before now is untouched.
    before = {p.id: p for p in res.placements if p.end_s <= now}
    after = {p.id: p for p in res2.placements}
    for sid, p in before.items():
        assert after[sid] == p


def test_reason_never_visible_and_outside_night() -> None:
    inp = KernelInput(
        [seq("a", 600, 1), seq("b", 600, 1, (40_000, 50_000)), seq("c", 600, 1, (100, 400))], NIGHT
    )
    res = schedule(inp)
    assert res.unscheduled["a"].reason is Reason.NEVER_VISIBLE
    assert res.unscheduled["b"].reason is Reason.OUTSIDE_NIGHT
    assert res.unscheduled["c"].reason is Reason.WINDOW_TOO_SHORT
    assert res.placements == ()


def test_reason_quota_exhausted() -> None:
    seqs = [seq(f"s{k}", 1000, 5 - k, NIGHT, program="p") for k in range(3)]
    res = schedule(KernelInput(seqs, NIGHT, quotas_s={"p": 2500}))
    assert sorted(p.id for p in res.placements) == ["s0", "s1"]
    assert res.unscheduled["s2"].reason is Reason.QUOTA_EXHAUSTED


def test_reason_displaced_names_the_higher_weight_sequence() -> None:
    res = schedule(KernelInput([seq("low", 1000, 1, (0, 1500)), seq("high", 1000, 9, (0, 1500))], NIGHT))
    assert [p.id for p in res.placements] == ["high"]
    u = res.unscheduled["low"]
    assert (u.reason, u.by) == (Reason.DISPLACED, "high")
    assert str(u) == "displaced by higher-weight sequence high"


def test_all_or_nothing_mandatory_failure_withdraws_the_request() -> None:
    seqs = [
        seq("blocker", 1000, 9, (0, 1000)),
        seq("m", 1000, 2, (0, 1000), request_id="r", mandatory=True, all_or_nothing=True),
        seq("x", 500, 2, NIGHT, request_id="r", all_or_nothing=True),
        seq("free", 500, 1, NIGHT),
    ]
    res = schedule(KernelInput(seqs, NIGHT))
    placed = {p.id for p in res.placements}
    assert placed == {"blocker", "free"}
    assert res.unscheduled["m"].reason is Reason.DISPLACED
    assert (res.unscheduled["x"].reason, res.unscheduled["x"].by) == (Reason.MANDATORY_SIBLING_FAILED, "m")


def test_transitions_are_respected_and_objective_counts_weight_times_duration() -> None:
    tr = GreatCircleTransition([0.0, 90.0], [0.0, 0.0], slew_rate_deg_s=1.0, settle_s=10.0)
    res = schedule(
        KernelInput([seq("a", 1000, 2, (0, 1000)), seq("b", 1000, 1, NIGHT)], NIGHT, transition=tr)
    )
    a, b = res.placement("a"), res.placement("b")
    assert a is not None and b is not None
    assert b.start_s >= a.end_s + 100.0 - 1e-9
    assert res.objective == 2 * 1000 + 1 * 1000


def test_two_telescopes_run_in_parallel_and_once_each() -> None:
    seqs = [seq(f"s{k}", 3000, 1, (0, 3000)) for k in range(3)]
    res = schedule(KernelInput(seqs, NIGHT, n_telescopes=2))
    assert sorted(p.telescope for p in res.placements) == [0, 1]
    assert len({p.id for p in res.placements}) == 2


def test_improvement_never_worse_than_the_constructive_pass() -> None:
    rng = np.random.default_rng(3)
    seqs = [
        seq(f"s{k}", float(rng.uniform(300, 1800)), float(rng.integers(1, 10)), (c - 5000, c + 5000))
        for k, c in enumerate(rng.uniform(0, 36_000, 200))
    ]
    inp = KernelInput(seqs, NIGHT)
    assert schedule(inp).objective >= schedule(inp, iterations=0).objective


def _plan() -> tuple[KernelInput, list[KSequence]]:
    seqs = [seq(f"s{k}", 1800, 1 + k % 3, NIGHT) for k in range(30)]
    return KernelInput(seqs, NIGHT), seqs


def test_reschedule_keeps_the_executing_sequence() -> None:
    inp, seqs = _plan()
    res = schedule(inp)
    running = next(p for p in res.placements if p.start_s < 10_000 < p.end_s)
    new = KernelInput([*seqs, seq("new", 600, 1.5, NIGHT)], NIGHT)
    res2 = reschedule(res, new, 10_000)
    assert res2.placement(running.id) == running
    assert res2.interrupted == ()
    assert validate(new, res2, now_s=10_000) == []


def test_alert_preempts_and_reports_the_interrupted_sequence() -> None:
    inp, seqs = _plan()
    res = schedule(inp)
    running = next(p for p in res.placements if p.start_s < 10_000 < p.end_s)
    new = KernelInput([*seqs, seq("grb", 1200, 1000, (9_000, 20_000))], NIGHT)
    res2 = reschedule(res, new, 10_000)
    assert res2.interrupted == (running.id,)
    assert res2.unscheduled[running.id].reason is Reason.INTERRUPTED
    assert res2.unscheduled[running.id].by == "grb"
    grb = res2.placement("grb")
    assert grb is not None and grb.start_s == 10_000
    cut = res2.placement(running.id)
    assert cut is not None and cut.end_s == 10_000
    assert validate(new, res2, now_s=10_000) == []
    # Work finished before now is untouched.
    for p in res.placements:
        if p.end_s <= 10_000:
            assert res2.placement(p.id) == p


def test_reschedule_removes_and_refills() -> None:
    inp, seqs = _plan()
    res = schedule(inp)
    later = [p for p in res.placements if p.start_s > 20_000]
    gone = later[0].id
    new = KernelInput([s for s in seqs if s.id != gone], NIGHT)
    res2 = reschedule(res, new, 15_000)
    assert res2.placement(gone) is None and gone not in res2.unscheduled
    assert validate(new, res2, now_s=15_000) == []
    assert len(res2.placements) == len(res.placements)  # the freed slot is refilled


def test_validate_catches_overlaps() -> None:
    from dataclasses import replace

    inp = KernelInput([seq("a", 1000, 1, NIGHT), seq("b", 1000, 1, NIGHT)], NIGHT)
    res = schedule(inp)
    a, b = res.placements
    bad = replace(res, placements=(a, replace(b, start_s=a.start_s + 10, end_s=a.start_s + 1010)))
    assert any("starts before" in e for e in validate(inp, bad))
