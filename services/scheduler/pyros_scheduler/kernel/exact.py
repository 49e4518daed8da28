"""schedule_exact(): the same problem solved exactly with OR-Tools CP-SAT (small instances).

The model works on a 1 s grid, rounding every window inwards, every duration and transition
upwards, so an optimal grid plan is feasible for the float problem too (and validate()
accepts it). Per telescope t and sequence i:

- ``on[i, t]``: i runs on t; for each usable window w a literal ``in[i, w, t]`` (exactly
  one when ``on``) bounds the start ``s[i, t]`` to the window;
- an ``AddCircuit`` over a depot and the sequences orders each telescope: an arc i -> j
  forces ``s[j] >= s[i] + d[i] + transition(i, j)``; a skipped sequence takes its self-loop;
- a sequence runs on at most one telescope; quotas bound each program's placed seconds;
  a request with essential sequences stands or falls as one (an essential member is placed
  whenever any member is);
- objective: maximise the sum of weight × duration (weights scaled to integers).

The heuristic plan (``schedule``) is given as a hint (a warm start). A deterministic-time
limit keeps the result reproducible; ``stats["exact_optimal"]`` is 1.0 when CP-SAT proved
optimality, and ``stats["exact_bound"]`` is its upper bound on the objective.
"""

from __future__ import annotations

import math

from ortools.sat.python import cp_model

from pyros_scheduler.kernel._state import EPS, Prep, State
from pyros_scheduler.kernel.model import KernelInput, KernelResult
from pyros_scheduler.kernel.solver import _critical, _placements, schedule

# Above this many schedulable sequences the circuit model grows as n² per telescope:
# the planner then keeps the heuristic.
EXACT_MAX_SEQUENCES = 24
WEIGHT_SCALE = 1000


def schedule_exact(
    inp: KernelInput,
    *,
    max_time_s: float = 5.0,
    hint: KernelResult | None = None,
    workers: int = 1,
) -> KernelResult:
    """Solve ``inp`` with CP-SAT; never worse than ``hint`` (default: the heuristic plan)."""
    heuristic = hint if hint is not None else schedule(inp)
    p = Prep.of(inp)
    tels = range(inp.n_telescopes)
    live = [i for i in range(p.n) if i not in p.static and p.ptr[i + 1] > p.ptr[i]]
    critical = _critical(p)
    if not live:
        return heuristic
    m = cp_model.CpModel()
    horizon_lo = math.ceil(p.night[0])
    horizon_hi = math.floor(p.night[1])
    dur = {i: math.ceil(p.dur[i] - EPS) for i in live}
    on: dict[tuple[int, int], cp_model.IntVar] = {}
    start: dict[tuple[int, int], cp_model.IntVar] = {}
    placed: dict[int, cp_model.IntVar] = {}
    for i in live:
        wins = [
            (math.ceil(lo - EPS), math.floor(hi + EPS) - dur[i])
            for lo, hi in p.windows(i)
            if math.floor(hi + EPS) - dur[i] >= math.ceil(lo - EPS)
        ]
        placed[i] = m.new_bool_var(f"placed_{i}")
        if not wins:
            m.add(placed[i] == 0)
            continue
        for t in tels:
            on[i, t] = m.new_bool_var(f"on_{i}_{t}")
            start[i, t] = m.new_int_var(horizon_lo, horizon_hi, f"s_{i}_{t}")
            ins = [m.new_bool_var(f"in_{i}_{w}_{t}") for w in range(len(wins))]
            m.add(sum(ins) == on[i, t])
            for lit, (a, b) in zip(ins, wins, strict=True):
                m.add(start[i, t] >= a).only_enforce_if(lit)
                m.add(start[i, t] <= b).only_enforce_if(lit)
        m.add(sum(on[i, t] for t in tels) == placed[i])
    # Order on each telescope: a circuit through a depot (node 0) and the sequences.
    for t in tels:
        nodes = [i for i in live if (i, t) in on]
        if not nodes:
            continue
        arcs: list[tuple[int, int, cp_model.LiteralT]] = [(0, 0, m.new_bool_var(f"empty_{t}"))]
        for a, i in enumerate(nodes, 1):
            arcs.append((a, a, ~on[i, t]))
            arcs.append((0, a, m.new_bool_var(f"first_{i}_{t}")))
            arcs.append((a, 0, m.new_bool_var(f"last_{i}_{t}")))
            for b, j in enumerate(nodes, 1):
                if i == j:
                    continue
                lit = m.new_bool_var(f"next_{i}_{j}_{t}")
                gap = dur[i] + math.ceil(inp.transition.cost(i, j) - EPS)
                m.add(start[j, t] >= start[i, t] + gap).only_enforce_if(lit)
                arcs.append((a, b, lit))
        m.add_circuit(arcs)
    # Quotas (placed seconds per program, as State.quota_ok counts them).
    for prog, cap in inp.quotas_s.items():
        members = [i for i in live if p.prog[i] == prog]
        if members:
            m.add(sum(math.ceil(p.dur[i] - EPS) * placed[i] for i in members) <= math.floor(cap + EPS))
    # Requests standing or falling together.
    for group in p.groups:
        g = [i for i in group if i in placed]
        for k in group:
            if not p.essential[k]:
                continue
            for j in g:
                if k in placed:
                    m.add_implication(placed[j], placed[k])
                else:
                    m.add(placed[j] == 0)
    # Time-critical sequences (alerts) keep the heuristic's placement, their earliest start:
    # CP-SAT arranges the routine work around them and never trades an alert's minutes.
    where_h = {pl.id: pl for pl in heuristic.placements}
    for i in critical:
        if i not in placed:
            continue
        pl = where_h.get(p.ids[i])
        if pl is None or (i, pl.telescope) not in on:
            m.add(placed[i] == 0)
            continue
        m.add(on[i, pl.telescope] == 1)
        m.add(start[i, pl.telescope] == math.ceil(pl.start_s - EPS))
    m.maximize(sum(round(WEIGHT_SCALE * p.w[i] * p.dur[i]) * placed[i] for i in live))
    # Warm start from the heuristic plan.
    where = {pl.id: pl for pl in heuristic.placements}
    for i in live:
        pl = where.get(p.ids[i])
        m.add_hint(placed[i], pl is not None)
        for t in tels:
            if (i, t) in on:
                here = pl is not None and pl.telescope == t
                m.add_hint(on[i, t], here)
                if pl is not None and here:
                    m.add_hint(start[i, t], math.ceil(pl.start_s - EPS))
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = max_time_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    # CP-SAT would otherwise install its own SIGINT handler, and a service or `pyros up`
    # would no longer stop cleanly on Ctrl-C.
    solver.parameters.catch_sigint_signal = False
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return heuristic
    st = State(p, inp)
    chosen = sorted(
        (t, int(solver.value(start[i, t])), i) for (i, t), lit in on.items() if solver.boolean_value(lit)
    )
    for t, begin, i in chosen:
        st.put_back(i, t, float(begin))
    if st.value < heuristic.objective - EPS:
        return heuristic
    sibling: dict[int, str] = {}
    for group in p.groups:
        failed = [k for k in group if p.essential[k] and not st.placed[k]]
        if failed:
            for k in group:
                if k != failed[0] and not st.placed[k]:
                    sibling[k] = p.ids[failed[0]]
    unplaced = [i for i in range(p.n) if not st.placed[i]]
    placements = _placements(st)
    optimal = status == cp_model.OPTIMAL
    stats = {
        "sequences": float(p.n),
        "placed": float(len(placements)),
        "exact_optimal": 1.0 if optimal else 0.0,
        "exact_bound": solver.best_objective_bound / WEIGHT_SCALE,
        "exact_wall_s": solver.wall_time,
        "heuristic_objective": heuristic.objective,
    }
    return KernelResult(placements, st.reasons(unplaced, sibling), st.value, (), stats, p)


__all__ = ["EXACT_MAX_SEQUENCES", "schedule_exact"]
