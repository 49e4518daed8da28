"""objective() and validate(): one scoring function and an independent feasibility check."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from pyros_common.domain.programs.priority import time_critical_factor

from pyros_scheduler.kernel.model import KernelInput, KernelResult, KSequence, Placement

TOL = 1e-3


def objective(inp: KernelInput, placements: Iterable[Placement]) -> float:
    """Sum of weight × seconds observed (a placement counts at most the sequence's duration);
    a time-critical sequence's weight decays with its start (``KSequence`` docstring)."""
    by_id = {s.id: s for s in inp.sequences}
    total = 0.0
    seen: set[str] = set()
    for p in placements:
        s = by_id.get(p.id)
        if s is None or p.id in seen:
            continue
        seen.add(p.id)
        w = s.weight
        if s.decay_ref_s is not None and s.decay_index:
            w *= time_critical_factor(p.start_s - s.decay_ref_s, s.decay_index, s.decay_scale_s)
        total += w * max(0.0, min(p.end_s - p.start_s, s.duration_s))
    return total


def _essential_groups(seqs: Iterable[KSequence]) -> dict[str, list[KSequence]]:
    groups: dict[str, list[KSequence]] = {}
    for s in seqs:
        if s.request_id:
            groups.setdefault(s.request_id, []).append(s)
    return {r: m for r, m in groups.items() if any(s.mandatory or s.all_or_nothing for s in m)}


def validate(inp: KernelInput, result: KernelResult, *, now_s: float | None = None) -> list[str]:
    """Every broken rule, as text (empty when the plan is feasible).

    Checks: known and unique ids, durations, night, windows, telescopes, no overlap with
    transitions between consecutive placements, quotas, requests standing or falling together
    (for a rescheduled plan, only work starting after ``now_s`` had to be withdrawn), and that
    every sequence is either placed or has a reason.
    """
    errors: list[str] = []
    by_id = {s.id: s for s in inp.sequences}
    index = {s.id: k for k, s in enumerate(inp.sequences)}
    interrupted = set(result.interrupted)
    n0, n1 = inp.night
    seen: set[str] = set()
    used: dict[str, float] = {}
    per_tel: dict[int, list[Placement]] = {}
    for p in result.placements:
        s = by_id.get(p.id)
        if s is None:
            errors.append(f"{p.id}: unknown sequence")
            continue
        if p.id in seen:
            errors.append(f"{p.id}: placed twice")
        seen.add(p.id)
        length = p.end_s - p.start_s
        if p.id in interrupted:
            if length > s.duration_s + TOL or length < 0:
                errors.append(f"{p.id}: interrupted run longer than the sequence")
        elif abs(length - s.duration_s) > TOL:
            errors.append(f"{p.id}: length {length} != duration {s.duration_s}")
        if not 0 <= p.telescope < inp.n_telescopes:
            errors.append(f"{p.id}: telescope {p.telescope} out of range")
        if p.start_s < n0 - TOL or p.end_s > n1 + TOL:
            errors.append(f"{p.id}: outside the night")
        if not any(lo - TOL <= p.start_s and p.start_s + s.duration_s <= hi + TOL for lo, hi in s.windows):
            if p.id not in interrupted or not any(lo - TOL <= p.start_s < hi for lo, hi in s.windows):
                errors.append(f"{p.id}: not inside any of its windows")
        used[s.program] = used.get(s.program, 0.0) + length
        per_tel.setdefault(p.telescope, []).append(p)
    for tel, ps in per_tel.items():
        ps.sort(key=lambda p: p.start_s)
        for a, b in itertools.pairwise(ps):
            gap = inp.transition.cost(index[a.id], index[b.id])
            if b.start_s < a.end_s + gap - TOL:
                errors.append(f"telescope {tel}: {b.id} starts before {a.id} ends + transition {gap:.1f} s")
    late_progs = {
        by_id[p.id].program
        for p in result.placements
        if p.id in by_id and (now_s is None or p.start_s > now_s)
    }
    for prog, q in inp.quotas_s.items():
        # A quota lowered during the night cannot undo what already ran: only work still to
        # come must fit it.
        if used.get(prog, 0.0) > q + TOL and prog in late_progs:
            errors.append(f"program {prog}: {used[prog]:.0f} s placed > quota {q:.0f} s")
    placed = {p.id: p for p in result.placements}
    for req, members in _essential_groups(inp.sequences).items():
        missing = [
            s.id
            for s in members
            if (s.mandatory or s.all_or_nothing) and (s.id not in placed or s.id in interrupted)
        ]
        if not missing:
            continue
        late = [s.id for s in members if s.id in placed and (now_s is None or placed[s.id].start_s > now_s)]
        late = [x for x in late if x not in interrupted]
        if late:
            errors.append(f"request {req}: {missing[0]} unscheduled but {late[0]} placed")
    for s in inp.sequences:
        if s.id not in placed and s.id not in result.unscheduled:
            errors.append(f"{s.id}: neither placed nor given a reason")
        if s.id in placed and s.id in result.unscheduled and s.id not in interrupted:
            errors.append(f"{s.id}: both placed and unscheduled")
    return errors
