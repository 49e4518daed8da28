"""schedule_exact() and improve_windows(): the same problem solved with OR-Tools CP-SAT.

The model works on a 1 s grid, rounding every window inwards, every duration and transition
upwards, so a grid plan is feasible for the float problem too (and validate() accepts it).
Per telescope t and sequence i:

- ``on[i, t]``: i runs on t; for each usable window w a literal ``in[i, w, t]`` (exactly
  one when ``on``) bounds the start ``s[i, t]`` to the window;
- an ``AddCircuit`` over a depot and the sequences orders each telescope: an arc i -> j
  forces ``s[j] >= s[i] + d[i] + transition(i, j)``; a skipped sequence takes its self-loop;
- a sequence runs on at most one telescope; quotas bound each program's placed seconds;
  a request with essential sequences stands or falls as one (an essential member is placed
  whenever any member is);
- objective: maximise the sum of weight × duration (weights scaled to integers).

Redundant constraints tighten the linear relaxation (the circuit's big-M arcs alone give a
loose bound): a per-telescope ``AddNoOverlap`` over the optional intervals, and energy
constraints over time intervals [a, b] built from the windows' ends: every placed sequence
occupies at least its compulsory part m_i(a, b) of [a, b] (left/right shift), and between two
such sequences on one telescope lies at least the smaller incoming transition, so
Σ (m_i + min transition into i) × placed_i ≤ T × (b − a + the largest of those transitions).
They hold for every feasible plan, so the bound stays an upper bound of the same problem.
Above ``CIRCUIT_MAX_SEQUENCES`` the circuit (n² arcs) is left out: the model is then a
relaxation (no-overlap of intervals lengthened by each sequence's smallest outgoing
transition, plus the energy constraints) and gives the bound only.

The heuristic plan (``schedule``) is given as a hint (a warm start). A deterministic-time
limit keeps the result reproducible; ``stats["exact_optimal"]`` is 1.0 when CP-SAT proved
optimality, and ``stats["exact_bound"]`` is its upper bound on the objective.

``improve_windows``: a large-neighbourhood search seeded by a plan: CP-SAT re-optimises one
time window of the night at a time (the sequences whose windows touch it, everything else
fixed), sliding over the night until a time budget is spent.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Container, Mapping

import numpy as np
from ortools.sat.python import cp_model

from pyros_scheduler.kernel._state import EPS, Prep, State
from pyros_scheduler.kernel.check import validate
from pyros_scheduler.kernel.model import KernelInput, KernelResult
from pyros_scheduler.kernel.solver import _critical, _eligible, _gap_fill, _placements, schedule

# Above this many schedulable sequences the circuit model grows as n² per telescope:
# the planner then keeps the heuristic.
EXACT_MAX_SEQUENCES = 24
# Above this many, schedule_exact builds the relaxation without the circuit (bound only).
CIRCUIT_MAX_SEQUENCES = 120
WEIGHT_SCALE = 1000
# Energy constraints: interval ends taken from at most this many window ends.
ENERGY_POINTS = 48
# improve_windows: a window holds about this many placements.
WINDOW_PLACEMENTS = 8
WINDOW_MAX_FREE = 40


def _params(solver: cp_model.CpSolver, max_time_s: float, workers: int) -> None:
    solver.parameters.max_deterministic_time = max_time_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    # CP-SAT would otherwise install its own SIGINT handler, and a service or `pyros up`
    # would no longer stop cleanly on Ctrl-C.
    solver.parameters.catch_sigint_signal = False


class _Model:
    """A CP-SAT model of the free sequences around fixed placements (see the module docstring).

    ``free``: sequence -> usable start ranges (integers); ``fixed``: sequence -> (telescope,
    start, end) as floats, forced; ``caps``: program -> seconds the free sequences may add;
    ``present``: sequences outside the model that are placed (for the request groups).
    """

    def __init__(
        self,
        p: Prep,
        inp: KernelInput,
        free: Mapping[int, list[tuple[int, int]]],
        fixed: Mapping[int, tuple[int, float, float]],
        caps: Mapping[str, float],
        groups: list[list[int]],
        present: Container[int] = (),
        *,
        circuit: bool = True,
        cuts: bool = True,
        outward: bool = False,
    ) -> None:
        self.p, self.inp = p, inp
        # Grid: inwards (durations, transitions up; a grid plan is a float plan) or, for a
        # bound only, outwards (down: every float plan, starts floored, is a grid plan).
        self.outward = outward
        dead = self.dead = _down if outward else _up
        m = self.m = cp_model.CpModel()
        cost = inp.transition.cost
        tels = range(inp.n_telescopes)
        lo_h = math.floor(p.night[0])
        hi_h = math.ceil(p.night[1]) + 1
        self.dur = dur = {i: dead(p.dur[i]) for i in free}
        self.on: dict[tuple[int, int], cp_model.IntVar] = {}
        self.start: dict[tuple[int, int], cp_model.IntVar] = {}
        self.placed: dict[int, cp_model.IntVar] = {}
        on, start, placed = self.on, self.start, self.placed
        nodes = list(free)
        # Smallest transitions into / out of each free sequence (over all model nodes).
        everyone = nodes + list(fixed)
        mt_in = {i: min((cost(k, i) for k in everyone if k != i), default=0.0) for i in nodes}
        mt_out = {i: min((cost(i, k) for k in everyone if k != i), default=0.0) for i in nodes}
        for i, wins in free.items():
            placed[i] = m.new_bool_var(f"placed_{i}")
            if not wins:
                m.add(placed[i] == 0)
                continue
            for t in tels:
                on[i, t] = m.new_bool_var(f"on_{i}_{t}")
                start[i, t] = m.new_int_var(min(a for a, _ in wins), max(b for _, b in wins), f"s_{i}_{t}")
                if len(wins) == 1:
                    continue
                ins = [m.new_bool_var(f"in_{i}_{w}_{t}") for w in range(len(wins))]
                m.add(sum(ins) == on[i, t])
                for lit, (a, b) in zip(ins, wins, strict=True):
                    m.add(start[i, t] >= a).only_enforce_if(lit)
                    m.add(start[i, t] <= b).only_enforce_if(lit)
            m.add(sum(on[i, t] for t in tels) == placed[i])
        for t in tels:
            here = [i for i in nodes if (i, t) in on]
            fx = sorted((f for f, (ft, _, _) in fixed.items() if ft == t), key=lambda f: fixed[f][1])
            if circuit and (here or fx):
                self._circuit(t, here, fx, fixed, cost)
            # Optional intervals (no-overlap): with the circuit, redundant (its propagation
            # and cuts help the bound); without it, lengthened by the smallest outgoing
            # transition, a relaxation of the transitions.
            ivs = []
            for i in here:
                size = dur[i] if circuit else dur[i] + math.floor(mt_out[i] + EPS)
                end = m.new_int_var(lo_h, hi_h + 4000 + size, f"e_{i}_{t}")
                ivs.append(m.new_optional_interval_var(start[i, t], size, end, on[i, t], f"iv_{i}_{t}"))
            for f in fx:
                _, s0, e0 = fixed[f]
                a, b = (_up(s0), _down(e0)) if outward else (_down(s0), _up(e0))
                if not circuit:
                    # the fixed block also keeps the transitions out of its neighbours
                    ivs.append(m.new_fixed_size_interval_var(a, max(0, b - a), f"fx_{f}_{t}"))
            if ivs:
                m.add_no_overlap(ivs)
            if not circuit:
                for f in fx:
                    _, s0, e0 = fixed[f]
                    for i in here:
                        # a free sequence is before or after each fixed block, transitions included
                        after = m.new_bool_var(f"after_{i}_{f}_{t}")
                        m.add(start[i, t] >= self._after(s0, e0, cost(f, i))).only_enforce_if(after, on[i, t])
                        m.add(start[i, t] + dur[i] + dead(cost(i, f)) <= _down(s0)).only_enforce_if(
                            ~after, on[i, t]
                        )
        for prog, cap in caps.items():
            members = [i for i in nodes if p.prog[i] == prog]
            if members:
                m.add(sum(dur[i] * placed[i] for i in members) <= math.floor(cap + EPS))
        # A request stands or falls as one: an essential member is placed whenever any member
        # is. Members outside the model are placed (``present``: fixed or kept) or not.
        for group in groups:
            inside = [j for j in group if j in placed]
            for k in group:
                if not p.essential[k]:
                    continue
                if k in placed:
                    for j in group:
                        if j in placed and j != k:
                            m.add_implication(placed[j], placed[k])
                        elif j in present:
                            m.add(placed[k] == 1)
                elif k not in present:
                    for j in inside:
                        m.add(placed[j] == 0)
        if cuts and nodes:
            self._energy(free, mt_in)
        # Gains are integers: rounded to nearest for the plan, up for the outward relaxation
        # (whose bound must never fall below the float optimum by the rounding).
        scale = math.ceil if self.outward else round
        m.maximize(sum(scale(WEIGHT_SCALE * p.w[i] * p.dur[i]) * placed[i] for i in nodes))

    def _circuit(
        self,
        t: int,
        here: list[int],
        fx: list[int],
        fixed: Mapping[int, tuple[int, float, float]],
        cost: Callable[[int, int], float],
    ) -> None:
        m, on, start, dur = self.m, self.on, self.start, self.dur
        arcs: list[tuple[int, int, cp_model.LiteralT]] = [(0, 0, m.new_bool_var(f"empty_{t}"))]
        node = {i: a for a, i in enumerate([*here, *fx], 1)}
        for i in here:
            a = node[i]
            arcs.append((a, a, ~on[i, t]))
            arcs.append((0, a, m.new_bool_var(f"first_{i}_{t}")))
            arcs.append((a, 0, m.new_bool_var(f"last_{i}_{t}")))
        # Fixed placements are always visited, in their own order.
        for k, f in enumerate(fx):
            a = node[f]
            if k == 0:
                arcs.append((0, a, m.new_bool_var(f"first_{f}_{t}")))
            if k == len(fx) - 1:
                arcs.append((a, 0, m.new_bool_var(f"last_{f}_{t}")))
            if k + 1 < len(fx):
                arcs.append((a, node[fx[k + 1]], m.new_bool_var(f"next_{f}_{fx[k + 1]}_{t}")))
        for i in here:
            for j in here:
                if i == j:
                    continue
                lit = m.new_bool_var(f"next_{i}_{j}_{t}")
                gap = dur[i] + self.dead(cost(i, j))
                m.add(start[j, t] >= start[i, t] + gap).only_enforce_if(lit)
                arcs.append((node[i], node[j], lit))
            for f in fx:
                _, s0, e0 = fixed[f]
                # i just after f: it starts after f ends and the transition
                lit = m.new_bool_var(f"next_{f}_{i}_{t}")
                m.add(start[i, t] >= self._after(s0, e0, cost(f, i))).only_enforce_if(lit)
                arcs.append((node[f], node[i], lit))
                # i just before f
                lit = m.new_bool_var(f"next_{i}_{f}_{t}")
                m.add(start[i, t] + dur[i] + self.dead(cost(i, f)) <= _down(s0)).only_enforce_if(lit)
                arcs.append((node[i], node[f], lit))
        m.add_circuit(arcs)

    def _energy(self, free: Mapping[int, list[tuple[int, int]]], mt_in: Mapping[int, float]) -> None:
        """Energy constraints over intervals between window ends (see the module docstring)."""
        nodes = [i for i, w in free.items() if w]
        if not nodes:
            return
        n_tel = self.inp.n_telescopes
        r = np.array([min(a for a, _ in free[i]) for i in nodes], dtype=np.float64)
        dl = np.array([max(b for _, b in free[i]) + self.dur[i] for i in nodes], dtype=np.float64)
        d = np.array([self.dur[i] for i in nodes], dtype=np.float64)
        mt = np.array([math.floor(mt_in[i] + EPS) for i in nodes], dtype=np.float64)
        pts = np.unique(np.concatenate([r, dl]))
        if pts.size > ENERGY_POINTS:
            pts = np.unique(np.quantile(pts, np.linspace(0.0, 1.0, ENERGY_POINTS)).round())
        for ia, a in enumerate(pts.tolist()):
            for b in pts[ia + 1 :].tolist():
                # the least overlap with [a, b] over the start range, at one of its ends
                early = np.minimum(r + d, b) - np.maximum(r, a)
                late = np.minimum(dl, b) - np.maximum(dl - d, a)
                comp = np.minimum(early, late)
                sel = np.flatnonzero(comp > 0)
                if sel.size < 2:
                    continue
                need = comp[sel] + mt[sel]
                cap = n_tel * (b - a + mt[sel].max())
                if need.sum() <= cap:
                    continue  # the constraint cannot bind
                self.m.add(
                    sum(int(need[k]) * self.placed[nodes[int(s)]] for k, s in enumerate(sel.tolist()))
                    <= int(cap)
                )

    def _after(self, s0: float, e0: float, tr: float) -> int:
        """The earliest grid start after a fixed placement [s0, e0] and the transition ``tr``."""
        if self.outward:
            return _down(s0) + _down(e0 - s0 + tr)
        return _up(e0 + tr)

    def hint(self, where: Mapping[int, tuple[int, float]]) -> None:
        for i, v in self.placed.items():
            pl = where.get(i)
            self.m.add_hint(v, pl is not None)
            for t in range(self.inp.n_telescopes):
                if (i, t) in self.on:
                    here = pl is not None and pl[0] == t
                    self.m.add_hint(self.on[i, t], here)
                    if pl is not None and here:
                        self.m.add_hint(self.start[i, t], _down(pl[1]) if self.outward else _up(pl[1]))


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _room(ranges: list[tuple[int, int]]) -> int:
    return sum(b - a for a, b in ranges)


def _up(x: float) -> int:
    return math.ceil(x - EPS)


def _down(x: float) -> int:
    return math.floor(x + EPS)


def _start_ranges(p: Prep, i: int, lo: float, hi: float, *, outward: bool = False) -> list[tuple[int, int]]:
    """Grid starts inside the windows: inwards (rounded in), or outwards (every float start,
    floored: a relaxation)."""
    out = []
    for a, b in p.windows(i):
        if outward:
            s0, s1 = _down(max(a, lo)), _down(min(b, hi) - p.dur[i])
        else:
            s0, s1 = _up(max(a, lo)), _down(min(b, hi)) - _up(p.dur[i])
        if s1 >= s0:
            out.append((s0, s1))
    return out


def _result(
    p: Prep, inp: KernelInput, keep: list[tuple[int, int, float, float]], chosen: list[tuple[int, int, int]]
) -> tuple[State, KernelResult]:
    """A plan of the kept placements (as they were) and the chosen ones (telescope, start, i)."""
    st = State(p, inp)
    for i, t, s0, e0 in keep:
        st.put_back(i, t, s0, end=e0)
    for t, begin, i in chosen:
        st.put_back(i, t, float(begin))
    sibling: dict[int, str] = {}
    for group in p.groups:
        failed = [k for k in group if p.essential[k] and not st.placed[k]]
        if failed:
            for k in group:
                if k != failed[0] and not st.placed[k]:
                    sibling[k] = p.ids[failed[0]]
    unplaced = [i for i in range(p.n) if not st.placed[i]]
    return st, KernelResult(_placements(st), st.reasons(unplaced, sibling), st.value, (), {}, p)


def schedule_exact(
    inp: KernelInput,
    *,
    max_time_s: float = 5.0,
    hint: KernelResult | None = None,
    workers: int = 1,
    circuit: bool | None = None,
    outward: bool = False,
) -> KernelResult:
    """Solve ``inp`` with CP-SAT; never worse than ``hint`` (default: the heuristic plan).

    ``circuit`` (default: at most ``CIRCUIT_MAX_SEQUENCES`` visible): False builds the
    relaxation without transitions' order, which only gives the bound (``exact_bound``).
    ``outward``: the grid rounded outwards (durations, transitions and window ends down to
    the second, starts floored): a relaxation of the float problem, so ``exact_bound`` bounds
    it, and ``exact_optimal`` says that bound is the relaxation's optimum; the plan returned
    is the hint (a grid plan need not be a float plan).
    """
    heuristic = hint if hint is not None else schedule(inp)
    p = Prep.of(inp)
    live = [i for i in range(p.n) if i not in p.static and p.ptr[i + 1] > p.ptr[i]]
    if not live:
        return heuristic
    if circuit is None:
        circuit = len(live) <= CIRCUIT_MAX_SEQUENCES
    critical = _critical(p)
    where_h = {pl.id: pl for pl in heuristic.placements}
    # Time-critical sequences (alerts) keep the heuristic's placement, their earliest start:
    # CP-SAT arranges the routine work around them and never trades an alert's minutes.
    fixed: dict[int, tuple[int, float, float]] = {}
    free: dict[int, list[tuple[int, int]]] = {}
    for i in live:
        pl = where_h.get(p.ids[i])
        if i in critical:
            if pl is not None:
                fixed[i] = (pl.telescope, pl.start_s, pl.end_s)
        else:
            free[i] = _start_ranges(p, i, p.night[0], p.night[1], outward=outward)
    caps = dict(inp.quotas_s)
    for f, (_, s0, e0) in fixed.items():
        if p.prog[f] in caps:
            caps[p.prog[f]] -= e0 - s0
    model = _Model(p, inp, free, fixed, caps, p.groups, set(fixed), circuit=circuit, outward=outward)
    model.hint(
        {i: (where_h[p.ids[i]].telescope, where_h[p.ids[i]].start_s) for i in free if p.ids[i] in where_h}
    )
    solver = cp_model.CpSolver()
    _params(solver, max_time_s, workers)
    status = solver.solve(model.m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return heuristic
    fixed_value = sum(heuristic_gain(p, f, s0, e0) for f, (_, s0, e0) in fixed.items())
    bound = solver.best_objective_bound / WEIGHT_SCALE + fixed_value
    optimal = status == cp_model.OPTIMAL and circuit
    stats = {
        "sequences": float(p.n),
        "exact_optimal": 1.0 if optimal else 0.0,
        # CP-SAT proved the optimum of the model it solved (the relaxation without the circuit
        # included): ``exact_bound`` is then that model's optimum.
        "exact_model_optimal": 1.0 if status == cp_model.OPTIMAL else 0.0,
        "exact_bound": bound,
        "exact_wall_s": solver.wall_time,
        "exact_circuit": 1.0 if circuit else 0.0,
        "exact_outward": 1.0 if outward else 0.0,
        "heuristic_objective": heuristic.objective,
    }
    best = heuristic
    if circuit and not outward:
        chosen = sorted(
            (t, int(solver.value(model.start[i, t])), i)
            for (i, t), lit in model.on.items()
            if solver.boolean_value(lit)
        )
        keep = [(f, t, s0, e0) for f, (t, s0, e0) in fixed.items()]
        _, res = _result(p, inp, keep, chosen)
        if res.objective >= heuristic.objective - EPS:
            best = res
    return KernelResult(
        best.placements,
        best.unscheduled,
        best.objective,
        best.interrupted,
        {**best.stats, **stats, "placed": float(len(best.placements))},
        best.prepared if best.prepared is not None else p,
    )


def relax_and_repair(inp: KernelInput, plan: KernelResult, *, max_time_s: float = 2.0) -> KernelResult:
    """``plan`` or, when better, a plan made from the relaxation's: CP-SAT on the model without
    the circuit (each transition relaxed to the smallest one out of its sequence, so intervals and
    no-overlap only: CP-SAT's interval reasoning solves it well), warm-started from ``plan``; its
    choice is then repaired with the real transitions (on each telescope, in the relaxation's
    order, each sequence at its earliest feasible start after the one before, or left out), an
    all-or-nothing request missing a member is left out whole, and the idle time is filled.

    Time-critical sequences keep their placements in ``plan`` (as ``schedule_exact``). The grid is
    rounded inwards, so the chosen starts are float starts. The result is checked with
    ``validate()`` and never below ``plan``.
    """
    p = (
        plan.prepared
        if isinstance(plan.prepared, Prep) and plan.prepared.seqs is inp.sequences
        else Prep.of(inp)
    )
    interrupted = {p.index[sid] for sid in plan.interrupted if sid in p.index}
    live = [i for i in range(p.n) if i not in p.static and p.ptr[i + 1] > p.ptr[i] and i not in interrupted]
    if not live:
        return plan
    critical = _critical(p)
    where = {p.index[pl.id]: pl for pl in plan.placements}
    fixed = {
        i: (where[i].telescope, where[i].start_s, where[i].end_s)
        for i in where
        if i in critical or i in interrupted
    }
    free = {i: _start_ranges(p, i, p.night[0], p.night[1]) for i in live if i not in fixed}
    caps = dict(inp.quotas_s)
    for f, (_, s0, e0) in fixed.items():
        if p.prog[f] in caps:
            caps[p.prog[f]] -= e0 - s0
    model = _Model(p, inp, free, fixed, caps, p.groups, set(fixed), circuit=False)
    model.hint({i: (where[i].telescope, where[i].start_s) for i in free if i in where})
    solver = cp_model.CpSolver()
    _params(solver, max_time_s, 1)
    if solver.solve(model.m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return plan
    chosen = [
        (float(solver.value(model.start[i, t])), t, i)
        for (i, t), lit in model.on.items()
        if solver.boolean_value(lit)
    ]
    keep_out = critical | interrupted
    repaired = [_repair(p, inp, fixed, chosen, keep_out)]
    # The relaxation's choice sequenced with the real slews as well: the model with the circuit
    # over the chosen sequences alone (a few dozen: CP-SAT orders them in moments), which keeps
    # what the greedy repair loses (a request placed as one whose members the slews pushed out).
    sub = _Model(p, inp, {i: free[i] for _, _, i in chosen}, fixed, caps, p.groups, set(fixed), cuts=False)
    sub.hint({i: (t, start) for start, t, i in chosen})
    exact = cp_model.CpSolver()
    _params(exact, max_time_s, 1)
    if exact.solve(sub.m) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        ordered = [
            (float(exact.value(sub.start[i, t])), t, i)
            for (i, t), lit in sub.on.items()
            if exact.boolean_value(lit)
        ]
        repaired.append(_repair(p, inp, fixed, ordered, keep_out))
    res = max(repaired, key=lambda r: r.objective)
    if res.objective <= plan.objective + 1e-6 or validate(inp, res):
        return plan
    return KernelResult(
        res.placements,
        res.unscheduled,
        res.objective,
        plan.interrupted,
        {**plan.stats, "relaxation_repaired": 1.0, "relaxation_wall_s": solver.wall_time},
        p,
    )


def _repair(
    p: Prep,
    inp: KernelInput,
    fixed: Mapping[int, tuple[int, float, float]],
    chosen: list[tuple[float, int, int]],
    keep_out: set[int],
) -> KernelResult:
    """A plan from a choice made without the real transitions: ``fixed`` placements as they are;
    the ``chosen`` (start, telescope, sequence), on each telescope in the order of their starts,
    each at its earliest feasible start after the one before (or left out); an all-or-nothing
    request missing a member tries that member anywhere, else is left out whole; then the idle
    time filled (``keep_out`` excepted). A choice feasible with the real transitions comes back
    whole (each start can only move earlier)."""
    st = State(p, inp)
    for f, (t, s0, e0) in fixed.items():
        st.put_back(f, t, s0, end=e0)
    last = dict.fromkeys(range(inp.n_telescopes), p.night[0])
    for _, t, i in sorted(chosen):
        if not st.placed[i] and st.quota_ok(i) and st.place(i, lo=last[t], tels=(t,)):
            last[t] = st.where[i][1] + p.dur[i]
    for group in p.groups:  # a request stands or falls as one
        missing = [k for k in group if p.essential[k] and not st.placed[k]]
        if missing and any(st.placed[k] for k in group):
            for k in missing:  # a second chance anywhere before the request is given up
                if k in fixed or not st.quota_ok(k) or not st.place(k):
                    break
        if any(p.essential[k] and not st.placed[k] for k in group):
            for k in group:
                if st.placed[k] and k not in fixed:
                    st.remove(k)
    _gap_fill(st, _eligible(p, keep_out), p.night[0])
    keep = [(i, t, s0, s0 + st.length[i]) for i, (t, s0) in st.where.items()]
    return _result(p, inp, keep, [])[1]


def heuristic_gain(p: Prep, i: int, s0: float, e0: float) -> float:
    """What a placement of ``i`` over [s0, e0] brings to the objective."""
    return p.w[i] * (e0 - s0) * p.factor(i, s0)


def improve_windows(
    inp: KernelInput,
    plan: KernelResult,
    *,
    budget_s: float = 2.0,
    window_s: float | None = None,
    step_time_s: float = 0.3,
    clock: Callable[[], float] = time.perf_counter,
    lo_s: float | None = None,
    max_rounds: int = 8,
    det_budget_s: float | None = None,
) -> KernelResult:
    """Large-neighbourhood search seeded by ``plan``: CP-SAT re-optimises one window of time.

    Windows of ``window_s`` (default: about ``WINDOW_PLACEMENTS`` placements' worth) slide
    over the night from ``lo_s`` (default: its start) with half-window overlaps, each sweep
    shifted by a third of a window and, after a sweep without a gain, with windows 1.5 times
    larger; then, for each request placed as one, one model over the windows around its
    placements (placed) or over its own windows (unplaced) keeps, drops or inserts it whole. Up to ``max_rounds`` sweeps, or until ``budget_s`` of wall time
    or ``det_budget_s`` of CP-SAT deterministic time is spent (each window at most
    ``step_time_s`` of deterministic time). In each window the free sequences are the
    movable ones (not time-critical, not in a request group reaching outside) placed inside
    it and the unplaced ones whose windows touch it; the placements around stay fixed. A
    window's solution is kept only when it raises the objective. The result is checked with
    ``validate()``; a plan it rejects is never returned (``plan`` comes back instead).
    """
    t_wall = clock() + budget_s
    spent = [0.0]  # CP-SAT deterministic time used

    def over() -> bool:
        return clock() >= t_wall or (det_budget_s is not None and spent[0] >= det_budget_s)

    def wall_left() -> float:
        return max(0.05, t_wall - clock())

    p = (
        plan.prepared
        if isinstance(plan.prepared, Prep) and plan.prepared.seqs is inp.sequences
        else Prep.of(inp)
    )
    n0, n1 = p.night
    lo0 = n0 if lo_s is None else max(n0, lo_s)
    critical = _critical(p)
    cur = {p.index[pl.id]: (pl.telescope, pl.start_s, pl.end_s) for pl in plan.placements}
    value = plan.objective
    if window_s is None:
        placed_d = [e - s for _, s, e in cur.values()]
        mean_d = float(np.mean(placed_d)) if placed_d else float(np.mean(p.dur) if p.n else 3600.0)
        window_s = max(3600.0, WINDOW_PLACEMENTS * mean_d / max(1, inp.n_telescopes))
    # Request groups: movable only when all their members are free in the window.
    stats: dict[str, float] = {"windows": 0.0, "windows_improved": 0.0}
    interrupted = set(plan.interrupted)
    for rnd in range(max_rounds):
        gained = False
        # each sweep starts a third of a window later: the windows' edges move
        x = lo0 - (rnd % 3) * window_s / 3
        while x < n1 - EPS and not over():
            a, b = max(x, lo0), min(n1, x + window_s)
            got = _one_window(p, inp, cur, critical, interrupted, [(a, b)], step_time_s, wall_left(), spent)
            stats["windows"] += 1
            if got is not None and got[1] > value + 1e-6:
                cur, value = got[0], got[1]
                stats["windows_improved"] += 1
                gained = True
            x += window_s / 2
        # A request placed as one can only leave or come as one: one model over the windows
        # around its placements (or, unplaced, over its own windows) decides all its members.
        for g in p.groups:
            if over():
                break
            if any(k in critical or p.ids[k] in interrupted or k in p.static for k in g):
                continue
            if any(k in cur and cur[k][1] < lo0 - EPS for k in g):
                continue
            spans: list[tuple[float, float]] = []
            for k in g:
                if k in cur:
                    mid = 0.5 * (cur[k][1] + cur[k][2])
                    spans.append((max(lo0, mid - window_s / 2), min(n1, mid + window_s / 2)))
                else:
                    spans += [
                        (max(lo0, lo), min(n1, hi)) for lo, hi in p.windows(k) if min(n1, hi) > max(lo0, lo)
                    ]
            if not spans:
                continue
            got = _one_window(
                p, inp, cur, critical, interrupted, spans, step_time_s, wall_left(), spent, frozenset(g)
            )
            stats["windows"] += 1
            if got is not None and got[1] > value + 1e-6:
                cur, value = got
                stats["groups_moved"] = stats.get("groups_moved", 0.0) + 1
                gained = True
        if over():
            break
        if not gained:
            if window_s >= n1 - lo0:
                break
            window_s *= 1.5  # a sweep without a gain: larger windows
    if value <= plan.objective + 1e-6:
        return plan
    keep = [(i, t, s0, e0) for i, (t, s0, e0) in cur.items()]
    _, res = _result(p, inp, keep, [])
    stats["lns_deterministic_s"] = spent[0]
    res = KernelResult(
        res.placements, res.unscheduled, res.objective, plan.interrupted, {**plan.stats, **stats}, p
    )
    if validate(inp, res) or res.objective < plan.objective:
        return plan
    return res


def _one_window(
    p: Prep,
    inp: KernelInput,
    cur: dict[int, tuple[int, float, float]],
    critical: set[int],
    interrupted: set[str],
    spans: list[tuple[float, float]],
    max_time_s: float,
    wall_s: float,
    spent: list[float],
    must: frozenset[int] = frozenset(),
) -> tuple[dict[int, tuple[int, float, float]], float] | None:
    """Re-optimise the free sequences in ``spans`` (disjoint time windows) around the rest.

    ``must``: sequences kept among the free ones before the cap (a request to insert)."""
    cost = inp.transition.cost
    spans = _merge(spans)

    def within(s0: float, e0: float) -> bool:
        return any(s0 >= a - EPS and e0 <= b + EPS for a, b in spans)

    cand: set[int] = set()
    for i in range(p.n):
        if i in critical or i in p.static or p.ids[i] in interrupted:
            continue
        if i in cur:
            if within(cur[i][1], cur[i][2]):
                cand.add(i)
        elif any(lo < b and hi > a for lo, hi in p.windows(i) for a, b in spans):
            cand.add(i)
    ranges = {i: [r for a, b in spans for r in _start_ranges(p, i, a, b)] for i in cand}
    # What cannot move on the grid inside the window stays as it is (or out).
    cand = {i for i in cand if ranges[i]}
    # At most WINDOW_MAX_FREE free sequences (the circuit grows as their square): the placed
    # ones and ``must``, then the unplaced ones by weight, then by how long they may run.
    out = sorted(
        (i for i in cand if i not in cur and i not in must), key=lambda i: (-p.w[i], -_room(ranges[i]), i)
    )
    room = max(0, WINDOW_MAX_FREE - (len(cand) - len(out)))
    cand.difference_update(out[room:])
    groups = [g for g in p.groups if all(k in cand for k in g)]
    for g in p.groups:
        if not all(k in cand for k in g):
            cand.difference_update(g)
    free = {i: ranges[i] for i in cand}
    if not free:
        return None
    # Fixed: the other placements on each telescope that meet [a, b], and the neighbours
    # just before and just after.
    fixed: dict[int, tuple[int, float, float]] = {}
    for t in range(inp.n_telescopes):
        row = sorted((s0, e0, i) for i, (tt, s0, e0) in cur.items() if tt == t and i not in free)
        for a, b in spans:
            before = [x for x in row if x[1] <= a + EPS]
            after = [x for x in row if x[0] >= b - EPS]
            mid = [x for x in row if x[1] > a + EPS and x[0] < b - EPS]
            for s0, e0, i in ([before[-1]] if before else []) + mid + ([after[0]] if after else []):
                fixed[i] = (t, s0, e0)
    caps = dict(inp.quotas_s)
    for i, (_, s0, e0) in cur.items():
        if i not in free and p.prog[i] in caps:
            caps[p.prog[i]] -= e0 - s0
    if any(c < -EPS for c in caps.values()):
        return None
    present = {i for i in cur if i not in free}
    model = _Model(p, inp, free, fixed, caps, groups, present, circuit=True, cuts=False)
    model.hint({i: (cur[i][0], cur[i][1]) for i in free if i in cur})
    solver = cp_model.CpSolver()
    _params(solver, max_time_s, 1)
    solver.parameters.max_time_in_seconds = wall_s  # the search's budget is wall time
    status = solver.solve(model.m)
    spent[0] += solver.deterministic_time
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    new = {i: v for i, v in cur.items() if i not in free}
    for (i, t), lit in model.on.items():
        if solver.boolean_value(lit):
            s = float(solver.value(model.start[i, t]))
            new[i] = (t, s, s + p.dur[i])
    # Check the window's neighbourhood with the float transitions (the grid is conservative).
    for t in range(inp.n_telescopes):
        row = sorted((s0, e0, i) for i, (tt, s0, e0) in new.items() if tt == t)
        for (_, e_a, i_a), (s_b, _, i_b) in itertools.pairwise(row):
            if s_b < e_a + cost(i_a, i_b) - 1e-3:
                return None
    value = sum(heuristic_gain(p, i, s0, e0) for i, (_, s0, e0) in new.items())
    return new, value


__all__ = [
    "CIRCUIT_MAX_SEQUENCES",
    "EXACT_MAX_SEQUENCES",
    "improve_windows",
    "relax_and_repair",
    "schedule_exact",
]
