"""Night-time replanning (issue 12, rows 1-3): correct by construction, groups retried, alerts early.

The property test drives random streams of events through ``reschedule`` (add, change,
cancel, quota change, time advance, failure, alert) and after every step checks the plan
with ``validate`` (check.py: an independent feasibility check that shares no code with the
solver's timelines), that the past is kept as it ran, and that the objective of the work
still to come stays within ``BOUND`` of a full ``schedule()`` of the same pool from now.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyros_scheduler.kernel import (
    GreatCircleTransition,
    KernelInput,
    KernelResult,
    KSequence,
    Reason,
    objective,
    reschedule,
    schedule,
    schedule_exact,
    validate,
)

NIGHT = (0.0, 36_000.0)
# The work the replan puts after ``now`` is worth at least this share of what a full
# schedule() of the same pool from now places. Default reschedule (which also rebuilds the
# future of pools up to REBUILD_MAX): worst seen 0.995; the service's fast alert path
# (rebuild=False, local repair only): worst seen 0.948 (and 0.59 on another draw).
BOUND = 0.95
BOUND_FAST = 0.5


@dataclasses.dataclass
class World:
    """The pool as the service sees it: sequences with their targets, quotas, the clock."""

    seqs: dict[str, KSequence]
    radec: dict[str, tuple[float, float]]
    quotas: dict[str, float]
    now: float = 0.0

    def input(self) -> tuple[KernelInput, list[str]]:
        order = sorted(self.seqs)
        ra = [self.radec[s][0] for s in order]
        dec = [self.radec[s][1] for s in order]
        tr = GreatCircleTransition(ra, dec, slew_rate_deg_s=1.0, settle_s=10.0)
        return KernelInput([self.seqs[s] for s in order], NIGHT, 1, dict(self.quotas), tr), order


def random_world(rng: np.random.Generator, n: int, quotas: dict[str, float]) -> World:
    """``n`` random sequences ``s0``.. at random places in the sky, with ``quotas``."""
    world = World({}, {}, quotas)
    for k in range(n):
        sid = f"s{k}"
        world.seqs[sid] = random_seq(rng, sid)
        world.radec[sid] = (float(rng.uniform(0, 360)), float(rng.uniform(-20, 80)))
    return world


def random_seq(rng: np.random.Generator, sid: str, *, alert: bool = False, lo: float = 0.0) -> KSequence:
    a = float(rng.uniform(lo, 34_000))
    wins = ((a, a + float(rng.uniform(1500, 14_000))),)
    return KSequence(
        sid,
        float(rng.uniform(300, 2400)),
        1000.0 + float(rng.integers(0, 90)) if alert else float(rng.integers(1, 10)),
        wins,
        program="GRB" if alert else f"p{rng.integers(0, 3)}",
        request_id=sid if alert else f"r{rng.integers(0, 4)}" if rng.random() < 0.4 else "",
        all_or_nothing=not alert and rng.random() < 0.15,
        mandatory=alert,
    )


def future_value(inp: KernelInput, res: KernelResult, now: float) -> float:
    return objective(inp, [p for p in res.placements if p.start_s >= now - 1e-6])


def reference(world: World, res: KernelResult, now: float) -> float:
    """A full schedule() of what is left, on the night from now (after what runs)."""
    inp, _ = world.input()
    busy = max((p.end_s for p in res.placements if p.start_s <= now + 1e-6), default=now)
    start = max(now, busy)
    done = {p.id for p in res.placements if p.start_s <= now + 1e-6}
    left = [dataclasses.replace(s, windows=s.windows) for s in inp.sequences if s.id not in done]
    if not left or start >= NIGHT[1]:
        return 0.0
    quotas = dict(world.quotas)
    for p in res.placements:
        if p.id in done:
            prog = next(s.program for s in inp.sequences if s.id == p.id)
            if prog in quotas:
                quotas[prog] = max(0.0, quotas[prog] - (p.end_s - p.start_s))
    ids = [s.id for s in left]
    tr = GreatCircleTransition(
        [world.radec[s][0] for s in ids], [world.radec[s][1] for s in ids], slew_rate_deg_s=1.0, settle_s=10.0
    )
    ref_inp = KernelInput(left, (start, NIGHT[1]), 1, quotas, tr)
    return schedule(ref_inp).objective


def check_step(world: World, prev: KernelResult, res: KernelResult, executing: str | None) -> float:
    inp, _ = world.input()
    errors = validate(inp, res, now_s=world.now)
    assert errors == [], errors
    # The past is kept as it ran: finished work of sequences still in the pool is unchanged.
    now_pl = {p.id: p for p in res.placements}
    for p in prev.placements:
        if p.end_s <= world.now + 1e-6 and p.id in world.seqs:
            assert now_pl.get(p.id) == p, (p, now_pl.get(p.id))
    if executing is not None and executing in world.seqs and executing not in res.interrupted:
        assert executing in now_pl
    ref = reference(world, res, world.now)
    got = future_value(inp, res, world.now)
    return got / ref if ref > 0 else 1.0


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["add", "change", "cancel", "quota", "advance", "fail", "alert"]),
        st.integers(0, 2**31),
    ),
    min_size=4,
    max_size=9,
)


@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 22), seed=st.integers(0, 2**31), events=EVENTS)
def test_random_event_streams_keep_every_plan_valid(n: int, seed: int, events: list[tuple[str, int]]) -> None:
    rng = np.random.default_rng(seed)
    world = random_world(rng, n, {"p0": float(rng.uniform(2000, 12_000))})
    inp, _ = world.input()
    res = schedule(inp)
    assert validate(inp, res) == []
    counter = n
    ratios: list[float] = []
    fast_ratios: list[float] = []
    for kind, s in events:
        r = np.random.default_rng(s)
        placed = {p.id: p for p in res.placements}
        future = sorted(i for i in world.seqs if i not in placed or placed[i].start_s > world.now)
        executing = None
        if kind == "add" or (kind in ("change", "cancel", "fail") and not future):
            sid = f"s{counter}"
            counter += 1
            world.seqs[sid] = random_seq(r, sid, lo=world.now)
            world.radec[sid] = (float(r.uniform(0, 360)), float(r.uniform(-20, 80)))
        elif kind == "alert":
            sid = f"a{counter}"
            counter += 1
            world.seqs[sid] = random_seq(r, sid, alert=True, lo=world.now)
            world.radec[sid] = (float(r.uniform(0, 360)), float(r.uniform(-20, 80)))
        elif kind == "change":
            sid = future[int(r.integers(len(future)))]
            old = world.seqs[sid]
            what = int(r.integers(4))
            if what == 0:  # new windows
                a = float(r.uniform(world.now, 34_000))
                new = dataclasses.replace(old, windows=((a, a + float(r.uniform(1500, 9000))),))
            elif what == 1:  # longer or shorter
                new = dataclasses.replace(old, duration_s=float(old.duration_s * r.uniform(0.5, 2.5)))
            elif what == 2:  # new priority
                new = dataclasses.replace(old, weight=float(r.integers(1, 10)))
            else:  # new target (the windows stay: the transitions change)
                new = dataclasses.replace(old, key=f"moved{s}")
                world.radec[sid] = (float(r.uniform(0, 360)), float(r.uniform(-20, 80)))
            world.seqs[sid] = new
        elif kind == "cancel":
            sid = future[int(r.integers(len(future)))]
            del world.seqs[sid]
        elif kind == "fail":
            # the running (else the next) sequence fails: left out for the night
            running = [p.id for p in res.placements if p.start_s <= world.now < p.end_s]
            sid = running[0] if running else future[0]
            del world.seqs[sid]
        elif kind == "quota":
            world.quotas = {"p0": float(r.uniform(0, 8000)), "p1": float(r.uniform(0, 20_000))}
        elif kind == "advance":
            world.now = min(NIGHT[1], world.now + float(r.uniform(300, 6000)))
            running = [p.id for p in res.placements if p.start_s <= world.now < p.end_s]
            executing = running[0] if running else None
        inp, _ = world.input()
        fast = reschedule(res, inp, world.now, executing=executing, rebuild=False)
        fast_ratios.append(check_step(world, res, fast, executing))
        new_res = reschedule(res, inp, world.now, executing=executing)
        ratios.append(check_step(world, res, new_res, executing))
        res = new_res
    assert min(ratios) >= BOUND, ratios
    assert min(fast_ratios) >= BOUND_FAST, fast_ratios


def test_a_changed_window_moves_the_sequence() -> None:
    """Row 1: a placed sequence whose window moved is placed afresh, not kept in its old slot
    (without improvement moves: correctness must not depend on a lucky move)."""
    a = KSequence("a", 1800.0, 5.0, ((1000.0, 10_000.0),))
    b = KSequence("b", 1800.0, 2.0, ((1000.0, 36_000.0),))
    inp = KernelInput([a, b], NIGHT)
    res = schedule(inp)
    assert res.placement("a") is not None and res.placement("a").start_s < 10_000  # type: ignore[union-attr]
    moved = dataclasses.replace(a, windows=((20_000.0, 30_000.0),))
    inp2 = KernelInput([moved, b], NIGHT)
    res2 = reschedule(res, inp2, 100.0, iterations=0)
    assert validate(inp2, res2, now_s=100.0) == []
    pl = res2.placement("a")
    assert pl is not None and 20_000.0 <= pl.start_s <= 30_000.0 - 1800.0


def test_a_longer_sequence_does_not_overlap_its_successor() -> None:
    """Row 1: a duration that grew is checked against the next placement and the transition."""
    seqs = [KSequence(f"s{k}", 3000.0, 3.0, ((100.0, 36_000.0),)) for k in range(10)]
    tr = GreatCircleTransition(np.linspace(0, 90, 10), np.full(10, 20.0), slew_rate_deg_s=1.0, settle_s=10.0)
    inp = KernelInput(seqs, NIGHT, transition=tr)
    res = schedule(inp)
    first = min(res.placements, key=lambda p: p.start_s)
    grown = [dataclasses.replace(s, duration_s=4000.0) if s.id == first.id else s for s in seqs]
    inp2 = KernelInput(grown, NIGHT, transition=tr)
    res2 = reschedule(res, inp2, 0.0)
    assert validate(inp2, res2, now_s=0.0) == []


def test_a_lowered_quota_is_enforced_on_the_work_to_come() -> None:
    """Row 1: a quota lowered between two plans is enforced again."""
    seqs = [KSequence(f"s{k}", 1800.0, 3.0, ((0.0, 36_000.0),), program="P") for k in range(8)]
    inp = KernelInput(seqs, NIGHT, quotas_s={"P": 20_000.0})
    res = schedule(inp)
    assert sum(p.end_s - p.start_s for p in res.placements) > 7000
    inp2 = KernelInput(seqs, NIGHT, quotas_s={"P": 7000.0})
    res2 = reschedule(res, inp2, 0.0)
    assert validate(inp2, res2, now_s=0.0) == []
    assert sum(p.end_s - p.start_s for p in res2.placements) <= 7000.0 + 1e-6
    left = [u for u in res2.unscheduled.values() if u.reason is Reason.QUOTA_EXHAUSTED]
    assert len(left) == len(seqs) - len(res2.placements)


def test_a_failed_group_is_retried_once_its_blocker_is_cancelled() -> None:
    """Row 2: after its blocker went, reschedule places the all-or-nothing group as schedule() does."""
    blocker = KSequence("blocker", 6000.0, 5.0, ((0.0, 6000.0),))
    group = [
        KSequence(f"g{k}", 1500.0, 4.0, ((0.0, 6000.0),), request_id="G", all_or_nothing=True)
        for k in range(2)
    ]
    inp = KernelInput([blocker, *group], NIGHT)
    res = schedule(inp)
    assert [p.id for p in res.placements] == ["blocker"]
    inp2 = KernelInput(group, NIGHT)
    res2 = reschedule(res, inp2, 0.0)
    full = schedule(inp2)
    assert validate(inp2, res2, now_s=0.0) == []
    assert sorted(p.id for p in res2.placements) == ["g0", "g1"]
    assert res2.objective == full.objective == 12_000.0


def earliest_start(
    s: KSequence, lo: float, busy: list[tuple[float, float]], gap: float = 0.0
) -> float | None:
    """Brute force over a 1 s grid: the first start inside a window clear of ``busy``."""
    for a, b in s.windows:
        t = max(a, lo)
        while t + s.duration_s <= b + 1e-6:
            if all(t + s.duration_s + gap <= x or t >= y + gap for x, y in busy):
                return t
            t += 1.0
    return None


def test_no_routine_work_before_an_alert_that_could_start_earlier() -> None:
    """Row 3: a visible, feasible alert is placed at its earliest start; CP-SAT (small nights)
    must not push it behind routine work of greater total weight × duration."""
    rng = np.random.default_rng(3)
    routine = [KSequence(f"m{k}", 2400.0, 5.0, ((0.0, 36_000.0),), program="M31") for k in range(12)]
    alert = KSequence(
        "grb", 1200.0, 1090.0, ((3000.0, 9000.0),), program="GRB", request_id="grb", mandatory=True
    )
    seqs = [*routine, alert]
    tr = GreatCircleTransition(rng.uniform(0, 60, 13), rng.uniform(20, 40, 13), slew_rate_deg_s=1.0)
    inp = KernelInput(seqs, NIGHT, transition=tr)
    for res in (schedule(inp), schedule_exact(inp, max_time_s=2.0)):
        assert validate(inp, res) == []
        pl = res.placement("grb")
        assert pl is not None
        assert pl.start_s <= 3000.0 + 1.0, pl
        before = [p for p in res.placements if p.start_s < pl.start_s]
        assert all(p.end_s <= 3000.0 for p in before)


def test_an_alert_arriving_at_night_goes_first_at_its_earliest_moment() -> None:
    """Row 3, through reschedule: the alert takes the earliest slot after what runs."""
    routine = [KSequence(f"m{k}", 1800.0, 5.0, ((0.0, 36_000.0),)) for k in range(15)]
    res = schedule(KernelInput(routine, NIGHT))
    now = 5000.0
    alert = KSequence("grb", 1200.0, 1050.0, ((6000.0, 20_000.0),), request_id="grb", mandatory=True)
    inp2 = KernelInput([*routine, alert], NIGHT)
    res2 = reschedule(res, inp2, now)
    assert validate(inp2, res2, now_s=now) == []
    pl = res2.placement("grb")
    assert pl is not None
    busy = [(p.start_s, p.end_s) for p in res2.placements if p.start_s <= now < p.end_s]
    t = earliest_start(alert, now, busy)
    assert t is not None and abs(pl.start_s - t) <= 1.0


def test_an_alert_value_decays_from_its_trigger() -> None:
    """The objective credits an alert less the later it starts (t^-index from the strategy)."""
    a = KSequence(
        "grb", 600.0, 1000.0, ((0.0, 36_000.0),), decay_ref_s=0.0, decay_index=1.0, decay_scale_s=600.0
    )
    inp = KernelInput([a], NIGHT)
    early = objective(inp, [dataclasses.replace(schedule(inp).placements[0])])
    from pyros_scheduler.kernel import Placement

    late = objective(inp, [Placement("grb", 0, 6000.0, 6600.0)])
    assert early == 600_000.0
    assert late == 600_000.0 / 11.0
    assert schedule(inp).objective == early


def test_alerts_order_by_their_decayed_value() -> None:
    """Two alerts wanting the same start: the higher weight goes first, the other right after."""
    hi = KSequence("hi", 900.0, 1090.0, ((1000.0, 30_000.0),), decay_ref_s=0.0, decay_index=1.0)
    lo = KSequence("lo", 900.0, 1030.0, ((1000.0, 30_000.0),), decay_ref_s=0.0, decay_index=1.0)
    res = schedule(KernelInput([lo, hi], NIGHT))
    start = {p.id: p.start_s for p in res.placements}
    assert start["hi"] == 1000.0 and start["lo"] == 1900.0


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(4, 40), seed=st.integers(0, 2**31), horizon=st.sampled_from([0.0, 300.0, 1800.0]))
def test_the_alert_takes_the_slot_it_would_take_with_all_lower_work_lifted(
    n: int, seed: int, horizon: float
) -> None:
    """The fast path lifts out only the lower-weight work that starts before a horizon; the
    alert's slot, and the running sequence it interrupts, must be those it gets when every
    lower-weight sequence is lifted out (an infinite horizon: the code before the horizon)."""
    import pyros_scheduler.kernel.solver as solver

    rng = np.random.default_rng(seed)
    world = random_world(rng, n, {})
    inp, _ = world.input()
    res = schedule(inp)
    world.now = float(rng.uniform(0, 30_000))
    running = [p.id for p in res.placements if p.start_s <= world.now < p.end_s]
    world.seqs["grb"] = random_seq(rng, "grb", alert=True, lo=world.now)
    world.radec["grb"] = (float(rng.uniform(0, 360)), float(rng.uniform(-20, 80)))
    inp, _ = world.input()
    executing = running[0] if running else None
    got = {}
    saved = solver.ALERT_HORIZON_S
    try:
        for h in (float("inf"), horizon):
            solver.ALERT_HORIZON_S = h
            out = reschedule(res, inp, world.now, executing=executing, rebuild=False)
            assert validate(inp, out, now_s=world.now) == []
            pl = out.placement("grb")
            got[h] = (None if pl is None else (pl.telescope, round(pl.start_s, 6)), sorted(out.interrupted))
    finally:
        solver.ALERT_HORIZON_S = saved
    assert got[horizon] == got[float("inf")]
