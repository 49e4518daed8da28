"""Night planning: requests + programs + site + night -> a plan in UTC with a reason for every left-out sequence.

Used by ``pyros schedule`` and by the scheduler service. The kernel's reasons are turned into
the observatory's words (docs/scheduler.md):

    never visible | Moon constraint | quota exhausted | displaced by higher-weight sequence X |
    outside night | mandatory sibling failed | no longer visible | interrupted by X

"higher-weight" compares what the sequences bring to the objective (weight × duration), so
a long sequence of equal weight per second may displace a shorter one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np
from pyros_common.domain.programs.quotas import Grade
from pyros_common.domain.requests import Request
from pyros_common.domain.sky.constraints import Constraints
from pyros_common.domain.sky.overheads import Overheads
from pyros_common.domain.sky.sites import Site, Telescope
from pyros_common.domain.sky.visibility import visibility_windows_s

from pyros_scheduler.kernel import (
    EXACT_MAX_SEQUENCES,
    KernelResult,
    Placement,
    Reason,
    reschedule,
    schedule,
    schedule_exact,
)
from pyros_scheduler.mapping import MappingCache, NightInput, SequenceInfo, kernel_input, node_parameters

NEVER_VISIBLE = "never visible"
MOON = "Moon constraint"
QUOTA = "quota exhausted"
DISPLACED = "displaced by higher-weight sequence"
OUTSIDE_NIGHT = "outside night"
SIBLING = "mandatory sibling failed"
NO_LONGER_VISIBLE = "no longer visible"
INTERRUPTED = "interrupted by"


@dataclass(frozen=True)
class Program:
    """A scientific program as the scheduler needs it: its grade and its share of the night."""

    code: str
    grade: Grade
    quota_percent: float | None = None


@dataclass(frozen=True)
class Scheduled:
    seq_id: str  # kernel id "<request id>/<sequence name>"
    request_id: str
    request: str
    sequence: str
    telescope: str
    start: dt.datetime
    end: dt.datetime
    weight: float
    program: str
    info: SequenceInfo


@dataclass(frozen=True)
class Unplaced:
    seq_id: str
    request_id: str
    request: str
    sequence: str
    reason: str
    detail: str = ""
    holder: str = ""  # kernel id of the placement named in ``reason``, if any


@dataclass
class NightPlan:
    """One version of a night's plan, in UTC."""

    night: dt.date
    night_input: NightInput
    result: KernelResult
    telescopes: tuple[str, ...]
    scheduled: list[Scheduled]
    unscheduled: list[Unplaced]
    runtime_s: float = 0.0
    solver: str = ""
    interrupted: list[str] = field(default_factory=list)

    @property
    def dusk(self) -> dt.datetime:
        return self.night_input.dusk

    @property
    def dawn(self) -> dt.datetime:
        return self.night_input.dawn

    @property
    def objective(self) -> float:
        return self.result.objective

    def to_json(self) -> dict[str, Any]:
        """The ``schedule.json`` document (docs/scheduler.md)."""
        return {
            "night": {"date": self.night.isoformat(), "start": iso(self.dusk), "end": iso(self.dawn)},
            "scheduled": [
                {
                    "request": s.request,
                    "sequence": s.sequence,
                    "telescope": s.telescope,
                    "start": iso(s.start),
                    "end": iso(s.end),
                    "weight": round(s.weight, 6),
                    "program": s.program,
                    "target": s.info.target,
                }
                for s in self.scheduled
            ],
            "unscheduled": [
                {"request": u.request, "sequence": u.sequence, "reason": u.reason, "detail": u.detail}
                for u in self.unscheduled
            ],
            "interrupted": self.interrupted,
            "objective": round(self.objective, 3),
            "runtime_s": round(self.runtime_s, 4),
            "solver": self.solver,
        }


def iso(t: dt.datetime) -> str:
    """ISO 8601 UTC with a Z, to the second."""
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def quotas_s(programs: Iterable[Program], night_s: float, n_telescopes: int) -> dict[str, float]:
    """A program's quota for one night: its percent of the night's telescope time."""
    return {
        p.code: p.quota_percent / 100.0 * night_s * n_telescopes
        for p in programs
        if p.quota_percent is not None
    }


def build_input(
    requests: Sequence[Request],
    *,
    site: Site,
    night: dt.date,
    programs: Mapping[str, Program],
    n_telescopes: int = 1,
    overheads: Overheads | None = None,
    skip: Container[str] = (),
    node: Sequence[Telescope] = (),
    cache: MappingCache | None = None,
) -> NightInput:
    """Kernel input for ``night``, quotas as a share of this night's time.

    ``node``: the telescopes to plan for (their count, slowest slew and largest overheads
    replace ``n_telescopes`` and ``overheads``).
    """
    grades = {code: p.grade for code, p in programs.items()}
    extra: dict[str, Any] = {}
    if node:
        params = node_parameters(node)
        n_telescopes, overheads = params.n_telescopes, params.overheads
        extra = {"slew_rate_deg_s": params.slew_rate_deg_s, "settle_s": params.settle_s}
    ni = kernel_input(
        requests,
        site=site,
        night=night,
        grades=grades,
        n_telescopes=n_telescopes,
        overheads=overheads,
        skip=skip,
        cache=cache,
        **extra,
    )
    night_s = ni.kernel.night[1] - ni.kernel.night[0]
    q = quotas_s(programs.values(), night_s, n_telescopes)
    if not q:
        return ni
    kin = ni.kernel
    return NightInput(
        type(kin)(kin.sequences, kin.night, kin.n_telescopes, q, kin.transition), ni.dusk, ni.dawn, ni.info
    )


def solve(
    ni: NightInput,
    *,
    night: dt.date,
    site: Site,
    telescopes: Sequence[str],
    previous: NightPlan | None = None,
    now: dt.datetime | None = None,
    executing: str | None = None,
    iterations: int | None = None,
    clock_s: Any = None,
    exact: bool | None = None,
    exact_max_time_s: float = 5.0,
    rebuild: bool | None = None,
) -> NightPlan:
    """Full schedule, or an incremental one from ``now`` when ``previous`` is given.

    A full schedule of at most ``EXACT_MAX_SEQUENCES`` visible sequences is then solved
    exactly with CP-SAT, the heuristic plan as its warm start (``exact``: force it on or off;
    ``exact_max_time_s``: CP-SAT's deterministic time limit).

    ``clock_s`` is a zero-argument callable returning seconds (``time.perf_counter`` in the
    CLI, the clock port's ``monotonic`` in the service) used only to report the runtime.
    ``rebuild``: passed to ``reschedule`` (False: local repair only, the fast path).
    """
    t0 = clock_s() if clock_s else 0.0
    if now is not None and now > ni.dusk:
        # From now to dawn, keeping what ran (a first plan made at night starts from nothing).
        base = previous.result if previous is not None else KernelResult((), {}, 0.0)
        res = reschedule(
            base,
            ni.kernel,
            ni.to_s(now),
            executing=executing,
            rebuild=rebuild,
            iterations=10 if iterations is None else iterations,
        )
        how = "rebuilt" if res.stats.get("rebuilt") else "repair + gap filling + LNS"
        solver = f"pyros-kernel reschedule from {iso(now)} ({how})"
    else:
        res = schedule(ni.kernel, iterations=iterations)
        n_iter = int(res.stats.get("lns_iterations", 0))
        solver = f"pyros-kernel greedy + gap filling + LNS({n_iter})"
        if exact is None:
            exact = 0 < sum(1 for s in ni.kernel.sequences if s.windows) <= EXACT_MAX_SEQUENCES
        if exact:
            best = schedule_exact(ni.kernel, hint=res, max_time_s=exact_max_time_s)
            if best is not res:
                proved = "optimal" if best.stats.get("exact_optimal") else "best found in the time limit"
                gain = best.objective - res.objective
                solver += f", then CP-SAT: {proved} (+{gain:,.0f} over the heuristic)"
                res = best
    runtime = (clock_s() - t0) if clock_s else 0.0
    return to_plan(
        ni,
        res,
        night=night,
        site=site,
        telescopes=telescopes,
        runtime_s=runtime,
        solver=solver,
        previous=previous if now is not None and now > ni.dusk else None,
    )


def to_plan(
    ni: NightInput,
    res: KernelResult,
    *,
    night: dt.date,
    site: Site,
    telescopes: Sequence[str],
    runtime_s: float = 0.0,
    solver: str = "",
    previous: NightPlan | None = None,
) -> NightPlan:
    seqs = ni.kernel.sequences
    index = ni.index
    # A repaired plan keeps most placements: the same placement of the same sequence is the
    # same Scheduled row.
    same: dict[str, tuple[Placement, Scheduled]] = {}
    if previous is not None and previous.night_input.dusk == ni.dusk:
        rows = {x.seq_id: x for x in previous.scheduled}
        same = {p.id: (p, rows[p.id]) for p in previous.result.placements if p.id in rows}
    scheduled = []
    for p in res.placements:
        k = index[p.id]
        inf = ni.info[k]
        kept = same.get(p.id)
        if (
            kept is not None
            and kept[0] == p
            and kept[1].info is inf
            and kept[1].weight == seqs[k].weight
            and kept[1].telescope == telescopes[p.telescope]
        ):
            scheduled.append(kept[1])
            continue
        scheduled.append(
            Scheduled(
                p.id,
                inf.request_id,
                inf.request,
                inf.sequence,
                telescopes[p.telescope],
                ni.to_utc(p.start_s),
                ni.to_utc(p.end_s),
                seqs[k].weight,
                inf.program,
                inf,
            )
        )
    scheduled.sort(key=lambda s: (s.start, s.telescope))
    return NightPlan(
        night=night,
        night_input=ni,
        result=res,
        telescopes=tuple(telescopes),
        scheduled=scheduled,
        unscheduled=explain(ni, res, site, previous, index),
        runtime_s=runtime_s,
        solver=solver,
        interrupted=[_name(ni, index, sid) for sid in res.interrupted],
    )


def _name(ni: NightInput, index: Mapping[str, int], sid: str) -> str:
    k = index.get(sid)
    if k is None:
        return sid
    return f"{ni.info[k].request}/{ni.info[k].sequence}"


def _without_moon(c: Constraints) -> Constraints:
    return Constraints(min_altitude_deg=c.min_altitude_deg, max_airmass=c.max_airmass)


def explain(
    ni: NightInput,
    res: KernelResult,
    site: Site,
    previous: NightPlan | None = None,
    index: Mapping[str, int] | None = None,
) -> list[Unplaced]:
    """The kernel's reasons in the observatory's words (see the module docstring).

    ``previous``: the plan this one repairs; a sequence with the same kernel reason, the same
    kernel sequence and a holder still placed keeps its explanation (a replan then costs what
    changed, not the whole pool).
    """
    seqs = ni.kernel.sequences
    if index is None:
        index = ni.index
    placed = {p.id: p for p in res.placements}
    # Pass 1, over the previous reasons: those that still hold are kept as they are.
    out: list[Unplaced] = []
    reused: set[str] = set()
    if previous is not None:
        prev_k = previous.result.unscheduled
        prev_seqs = previous.night_input.kernel.sequences
        prev_index = previous.night_input.index
        now_k = res.unscheduled
        for old in previous.unscheduled:
            sid = old.seq_id
            u = now_k.get(sid)
            if u is None or sid in placed or (old.holder and old.holder not in placed):
                continue
            was = prev_k.get(sid)
            j = prev_index.get(sid)
            # reschedule carries unchanged reasons over as the same objects
            if (was is u or was == u) and j is not None and prev_seqs[j] is seqs[index[sid]]:
                out.append(old)
                reused.add(sid)
    # Pass 2, over the kernel's reasons not kept: explained afresh.
    todo = [
        u
        for u in res.unscheduled.values()
        if u.id not in reused and (u.id not in placed or u.reason is Reason.INTERRUPTED)
    ]
    static = (Reason.NEVER_VISIBLE, Reason.WINDOW_TOO_SHORT)
    never = [
        index[u.id]
        for u in todo
        if u.reason in static
        and ni.info[index[u.id]].valid_tonight
        and ni.info[index[u.id]].nights_carried == 0
    ]
    moon = {k for k in never if ni.info[k].constraints != _without_moon(ni.info[k].constraints)}
    moon_blocked: set[int] = set()
    if moon:
        ks = sorted(moon)
        wins = visibility_windows_s(
            site,
            [ni.info[k].ra_deg for k in ks],
            [ni.info[k].dec_deg for k in ks],
            [_without_moon(ni.info[k].constraints) for k in ks],
            ni.dusk,
            ni.dawn,
        )
        moon_blocked = {
            k for k, w in zip(ks, wins, strict=True) if any(b - a >= seqs[k].duration_s for a, b in w)
        }
    holders: _Holders | None = None
    for u in todo:
        holder: str | None = None
        k = index[u.id]
        inf, s = ni.info[k], seqs[k]
        detail = ""
        if u.reason in (Reason.NEVER_VISIBLE, Reason.WINDOW_TOO_SHORT, Reason.OUTSIDE_NIGHT):
            if not inf.valid_tonight or u.reason is Reason.OUTSIDE_NIGHT:
                reason, detail = OUTSIDE_NIGHT, "its validity does not meet the night"
            elif inf.nights_carried > 0:
                reason, detail = NO_LONGER_VISIBLE, f"carried over {inf.nights_carried} night(s)"
            elif k in moon_blocked:
                reason = MOON
            else:
                reason = NEVER_VISIBLE
                if u.reason is Reason.WINDOW_TOO_SHORT:
                    longest = max((b - a for a, b in s.windows), default=0.0)
                    detail = f"visible {longest / 60:.0f} min, needs {s.duration_s / 60:.0f} min"
        elif u.reason is Reason.QUOTA_EXHAUSTED:
            reason, detail = QUOTA, f"program {inf.program}"
        elif u.reason is Reason.MANDATORY_SIBLING_FAILED:
            reason, detail = SIBLING, _name(ni, index, u.by) if u.by else ""
        elif u.reason is Reason.WINDOW_PASSED:
            reason, detail = NO_LONGER_VISIBLE, "its windows tonight are over"
        elif u.reason is Reason.INTERRUPTED:
            reason = f"{INTERRUPTED} {_name(ni, index, u.by) if u.by else 'an alert'}"
        else:  # DISPLACED or NO_ROOM: name who holds its time
            holders = holders if holders is not None else _Holders(ni, res)
            holder = _holder(ni, res, k, u.by, holders)
            reason = f"{DISPLACED} {_name(ni, index, holder)}" if holder else DISPLACED
        out.append(Unplaced(u.id, inf.request_id, inf.request, inf.sequence, reason, detail, holder or ""))
    out.sort(key=attrgetter("request", "sequence", "seq_id"))  # mostly in order already
    return out


class _Holders:
    """The placements as arrays, to name who holds a left-out sequence's time (``_holder``)."""

    def __init__(self, ni: NightInput, res: KernelResult) -> None:
        self.by_id = {q.id: q for q in ni.kernel.sequences}
        self.ids = [p.id for p in res.placements]
        self.start = np.fromiter((p.start_s for p in res.placements), np.float64, len(self.ids))
        self.end = np.fromiter((p.end_s for p in res.placements), np.float64, len(self.ids))
        self.value = np.fromiter(
            (self.by_id[i].weight * self.by_id[i].duration_s for i in self.ids), np.float64, len(self.ids)
        )


def _holder(
    ni: NightInput, res: KernelResult, k: int, by: str | None, h: _Holders | None = None
) -> str | None:
    """The placement that took the time of sequence ``k``: the one named by the kernel when it
    outweighs ``k``, else the most valuable overlapping its windows, else the nearest one."""
    h = h if h is not None else _Holders(ni, res)
    s = ni.kernel.sequences[k]
    if by is not None and by in h.by_id and h.by_id[by].weight > s.weight:
        return by
    if not h.ids:
        return by
    gap = np.full(len(h.ids), np.inf)
    for a, b in s.windows:
        gap = np.minimum(gap, np.maximum(0.0, np.maximum(a - h.end, h.start - b)))
    touching = gap == 0.0
    if touching.any():
        return h.ids[int(np.argmax(np.where(touching, h.value, -np.inf)))]
    if np.isfinite(gap).any():
        return h.ids[int(np.argmin(gap))]
    return by
