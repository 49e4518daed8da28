"""The scheduler's book: the pool of requests, what ran, and the current plan of the night.

No bus, no database: the handlers feed it events and publish what it returns. Times come in
as arguments (from the clock port), so a whole night can be replayed in a test.

Rules:
- a full schedule when a night is first planned and while it is still day; after dusk every
  change is an incremental reschedule from ``now`` to dawn, keeping what ran and what runs;
- a completed sequence never comes back; a failed one is left out for the rest of the night;
- at dawn the book rolls over: sequences not done and allowed to carry over are offered on the
  next night with their windows recomputed (mapping.nights_carried); a carried sequence with
  no window that night fails for good with "no longer visible";
- unsafe conditions hold the telescopes for ``unsafe_hold_s``: the running sequence is
  interrupted and nothing is planned before the hold ends (extended while still unsafe).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from pyros_common.domain.programs.quotas import Grade
from pyros_common.domain.requests import Request
from pyros_common.domain.sky.night import tonight
from pyros_common.domain.sky.overheads import Overheads
from pyros_common.domain.sky.sites import Site, Telescope

from pyros_scheduler.kernel import (
    CIRCUIT_MAX_SEQUENCES,
    EXACT_MAX_SEQUENCES,
    KernelInput,
    KernelResult,
    improve_windows,
    relax_and_repair,
    reschedule,
    schedule_exact,
    without_cycle_collector,
)
from pyros_scheduler.mapping import MappingCache, kernel_id
from pyros_scheduler.planner import NO_LONGER_VISIBLE, NightPlan, Program, build_input, iso, solve, to_plan


@dataclass(frozen=True)
class Version:
    """A plan plus why it was made."""

    plan: NightPlan
    trigger: str
    interrupted: str | None  # kernel id of the sequence this version interrupts
    # How it was made, for a later improvement of the same plan (NightBook.improve).
    now: dt.datetime | None = None
    executing: str | None = None
    incremental: bool = False
    fast: bool = False


EXACT_MAX_TIME_S = 0.5  # CP-SAT deterministic time per full replan of a small pool
# The window LNS (kernel.improve_windows) on a full plan, in the worker thread after the plan
# is out: CP-SAT deterministic time, a wall-time cap, and the largest pool it is run on.
LNS_DET_S = 5.0
LNS_WALL_S = 20.0
LNS_MAX_SEQUENCES = 2000
# Before the LNS on a pool of at most RELAX_MAX_SEQUENCES visible sequences: CP-SAT on the
# relaxation, its choice repaired (kernel.relax_and_repair), within RELAX_DET_S of deterministic
# time per solve. On random nights (benchmarks/scheduler_gap.py's shape, seeds apart from its own)
# the plan after the LNS was 1.3 % better at 50 sequences and 0.9 % at 100; at 300 the relaxation
# alone made it 0.5 % worse.
RELAX_DET_S = 2.0
RELAX_MAX_SEQUENCES = CIRCUIT_MAX_SEQUENCES


def polish(kin: KernelInput, result: KernelResult, *, exact: bool) -> KernelResult:
    """What the service makes of a full plan off the event loop: CP-SAT on a small pool
    (``exact``: when the inline solve did not run it), then, unless optimality is proved,
    the relaxation's plan repaired (up to ``RELAX_MAX_SEQUENCES``) and the window LNS within
    ``LNS_DET_S`` / ``LNS_WALL_S``. Never below ``result``."""
    visible = sum(1 for s in kin.sequences if s.windows)
    res = result
    if exact and 0 < visible <= EXACT_MAX_SEQUENCES:
        res = schedule_exact(kin, hint=res, max_time_s=EXACT_MAX_TIME_S)
    if not res.stats.get("exact_optimal") and 0 < visible <= LNS_MAX_SEQUENCES:
        if visible <= RELAX_MAX_SEQUENCES:
            res = relax_and_repair(kin, res, max_time_s=RELAX_DET_S)
        res = improve_windows(kin, res, budget_s=LNS_WALL_S, det_budget_s=LNS_DET_S)
    return res


class NightBook:
    """Pool, execution state and plan of the current night (see the module docstring)."""

    def __init__(
        self,
        *,
        site: Site,
        telescopes: Sequence[str],
        programs: Callable[[], Mapping[str, Program]] = dict,
        overheads: Overheads | None = None,
        unsafe_hold_s: float = 1800.0,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.site = site
        self.telescopes = tuple(telescopes)
        self.programs = programs
        self.overheads = overheads
        self.unsafe_hold_s = unsafe_hold_s
        self.monotonic = monotonic
        self.requests: dict[str, Request] = {}
        self.grades: dict[str, Grade] = {}  # program -> grade, from routines' events
        self.done: dict[str, dt.date] = {}  # kernel id -> night it completed
        self.failed_tonight: set[str] = set()
        self.dead: dict[str, str] = {}  # kernel id -> why it will never be scheduled again
        self.executing: dict[str, str] = {}  # telescope -> kernel id
        self.night: dt.date | None = None
        self.plan: NightPlan | None = None
        self.unsafe_until: dt.datetime | None = None
        self.windows = MappingCache()  # kept between replans (mapping.kernel_input)

    # --- pool ---------------------------------------------------------------------------

    def add(self, request: Request, now: dt.datetime, *, grade: str | None = None) -> None:
        """Add or replace a request; its "tonight" dates become the night in progress at ``now``.

        ``grade``: its program's grade as routines published it. A replaced request's sequences
        leave the previous plan, so the next replan places them afresh (new windows, target).
        """
        assert request.id is not None, "the scheduler only books stored requests"
        night = tonight(self.site, now)
        seqs = [s if s.date != "tonight" else s.model_copy(update={"date": night}) for s in request.sequences]
        fresh = request.model_copy(update={"sequences": seqs})
        old = self.requests.get(request.id)
        if old is not None and old != fresh:
            self._forget({kernel_id(request.id, q) for q in old.sequences})
        self.requests[request.id] = fresh
        if grade is not None:
            with contextlib.suppress(ValueError):
                self.grades[request.program] = Grade(grade)

    def remove(self, request_id: str) -> bool:
        gone = self.requests.pop(request_id, None)
        if gone is not None:
            self._forget({kernel_id(request_id, q) for q in gone.sequences})
        return gone is not None

    def _forget(self, ids: set[str]) -> None:
        """Drop these kernel ids from the previous plan (placements and reasons)."""
        self.windows.forget(ids)
        if self.plan is None or not ids:
            return
        prev = self.plan.result
        self.plan = replace(
            self.plan,
            result=KernelResult(
                tuple(p for p in prev.placements if p.id not in ids),
                {k: v for k, v in prev.unscheduled.items() if k not in ids},
                prev.objective,
                prev.interrupted,
                prev.stats,
                prev.prepared,
            ),
        )

    def program_grades(self) -> dict[str, Program]:
        """Programs for the planner: the given ones, with the grades routines published."""
        out = dict(self.programs())
        for code, grade in self.grades.items():
            base = out.get(code)
            out[code] = Program(code, grade, base.quota_percent if base is not None else None)
        return out

    def remove_alert(self, alert_id: str, request_id: str | None) -> list[str]:
        """Remove the requests made for ``alert_id`` (or ``request_id``); their ids."""
        gone = [
            rid
            for rid, r in self.requests.items()
            if rid == request_id or (r.alert_id and r.alert_id == alert_id)
        ]
        for rid in gone:
            self.remove(rid)
        return gone

    # --- execution ----------------------------------------------------------------------

    def started(self, telescope: str, seq_id: str) -> None:
        self.executing[telescope] = seq_id

    def finished(self, seq_id: str, *, ok: bool) -> None:
        for tel, sid in list(self.executing.items()):
            if sid == seq_id:
                del self.executing[tel]
        if ok:
            assert self.night is not None
            self.done[seq_id] = self.night
        else:
            self.failed_tonight.add(seq_id)

    def running_at(self, now: dt.datetime) -> str | None:
        """The sequence running at ``now``: reported by the observer, else from the plan."""
        if self.executing:
            return next(iter(self.executing.values()))
        if self.plan is None:
            return None
        for s in self.plan.scheduled:
            if s.start <= now < s.end and s.seq_id not in self.done:
                return s.seq_id
        return None

    # --- planning -----------------------------------------------------------------------

    def _node(self) -> tuple[Telescope, ...]:
        """The site's descriptions of our telescopes, when it has all of them (and no override)."""
        known = {t.id: t for t in self.site.telescopes}
        if self.overheads is not None or not all(t in known for t in self.telescopes):
            return ()
        return tuple(known[t] for t in self.telescopes)

    def _skip(self) -> set[str]:
        return {k for k, n in self.done.items() if n != self.night} | self.failed_tonight | set(self.dead)

    @without_cycle_collector  # windows, input and kernel: no collector pass over the pool meanwhile
    def replan(self, now: dt.datetime, trigger: str, *, full: bool = False, fast: bool = False) -> Version:
        """A new plan of the night: full before dusk (or when asked), else incremental from ``now``.

        ``fast``: the heuristic alone (no CP-SAT, no rebuild of the future): milliseconds, for
        an alert; ``improve`` then looks for a better plan off the event loop.
        """
        if self.night is None:
            self.night = tonight(self.site, now)
        ni = build_input(
            list(self.requests.values()),
            site=self.site,
            night=self.night,
            programs=self.program_grades(),
            n_telescopes=len(self.telescopes),
            overheads=self.overheads,
            skip=self._skip(),
            node=self._node(),
            cache=self.windows,
        )
        effective = now
        if self.unsafe_until is not None and self.unsafe_until > now:
            effective = self.unsafe_until
        incremental = (
            not full and self.plan is not None and self.plan.night == self.night and effective > ni.dusk
        )
        running = self.running_at(now) if incremental else None
        plan = solve(
            ni,
            night=self.night,
            site=self.site,
            telescopes=self.telescopes,
            previous=self.plan if incremental else None,
            now=effective if incremental else None,
            executing=running,
            clock_s=self.monotonic,
            # The service replans inline on every event: a short cap on the exact solve.
            exact_max_time_s=EXACT_MAX_TIME_S,
            exact=False if fast else None,
            iterations=0 if fast else None,
            rebuild=False if fast else None,
        )
        before = set(self.plan.result.interrupted) if self.plan is not None and incremental else set()
        self.plan = plan
        self._bury(plan)
        # The sequence this version interrupts (a plan keeps listing the earlier interruptions).
        interrupted = next((x for x in plan.result.interrupted if x not in before), None)
        if interrupted is not None:
            self.executing = {t: s for t, s in self.executing.items() if s != interrupted}
        return Version(plan, trigger, interrupted, effective, running, incremental, fast)

    def wants_improvement(self, version: Version) -> bool:
        """Whether ``improve`` may find more: a fast plan, or a full plan of at most
        ``LNS_MAX_SEQUENCES`` visible sequences that CP-SAT did not prove optimal."""
        if version.fast:
            return True
        if version.incremental:
            return False
        visible = sum(1 for s in version.plan.night_input.kernel.sequences if s.windows)
        return 0 < visible <= LNS_MAX_SEQUENCES and not version.plan.result.stats.get("exact_optimal")

    def improve(self, version: Version) -> NightPlan | None:
        """A better plan of the same input as ``version``, or None.

        Pure with respect to the book (it may run in a worker thread): after dusk the future is
        rebuilt around what ran and runs (``reschedule(rebuild=True)``); before dusk ``polish``:
        a small pool gets CP-SAT, warm-started from the plan, within ``EXACT_MAX_TIME_S``
        (unless the inline solve ran it), then the window LNS. Alerts keep their earliest
        starts either way.
        """
        plan = version.plan
        ni = plan.night_input
        if version.incremental and version.now is not None:
            t0 = self.monotonic() if self.monotonic else 0.0
            res = reschedule(
                plan.result, ni.kernel, ni.to_s(version.now), executing=version.executing, rebuild=True
            )
            solver = f"pyros-kernel reschedule from {iso(version.now)} (improved: rebuilt)"
        else:
            visible = sum(1 for s in ni.kernel.sequences if s.windows)
            if not 0 < visible <= max(EXACT_MAX_SEQUENCES, LNS_MAX_SEQUENCES):
                return None
            t0 = self.monotonic() if self.monotonic else 0.0
            res = polish(ni.kernel, plan.result, exact=version.fast)
            steps = []
            if res.stats.get("relaxation_repaired"):
                steps.append("CP-SAT relaxation repaired")
            if res.stats.get("windows"):
                steps.append(
                    f"CP-SAT window LNS ({res.stats.get('windows_improved', 0):.0f} windows improved)"
                )
            if not steps:
                steps.append(
                    "CP-SAT: "
                    + ("optimal" if res.stats.get("exact_optimal") else "best found in the time limit")
                )
            how = ", ".join(steps)
            solver = f"{plan.solver}, then {how} (improved after publication)"
        if res.objective <= plan.result.objective * (1 + 1e-9) + 1e-6:
            return None
        runtime = (self.monotonic() - t0) if self.monotonic else 0.0
        return to_plan(
            ni,
            res,
            night=plan.night,
            site=self.site,
            telescopes=plan.telescopes,
            runtime_s=runtime,
            solver=solver,
            previous=plan if version.incremental else None,
        )

    def adopt(self, version: Version, better: NightPlan) -> Version | None:
        """Make ``better`` the plan if ``version`` is still the current one (else None: superseded)."""
        if self.plan is not version.plan:
            return None
        self.plan = better
        self._bury(better)
        return Version(better, f"{version.trigger} (improved)", None)

    def _bury(self, plan: NightPlan) -> None:
        """Carried sequences with no window left fail for good."""
        index = plan.night_input.index
        for u in plan.unscheduled:
            k = index.get(u.seq_id)
            if k is None:
                continue
            if u.reason == NO_LONGER_VISIBLE and plan.night_input.info[k].nights_carried > 0:
                self.dead[u.seq_id] = NO_LONGER_VISIBLE

    def unsafe(self, now: dt.datetime) -> Version | None:
        """Hold the telescopes from ``now``: interrupt the running sequence, replan after the hold."""
        self.unsafe_until = now + dt.timedelta(seconds=self.unsafe_hold_s)
        if self.plan is None or self.night is None or now <= self.plan.dusk:
            return None
        running = self.running_at(now)
        now_s = self.plan.night_input.to_s(now)
        hold_s = now_s + self.unsafe_hold_s
        prev = self.plan.result
        keep = tuple(p for p in prev.placements if p.end_s <= now_s + 1e-6 or p.start_s >= hold_s)
        # What was planned in the hold goes back to the pool (seen as new by reschedule).
        freed = {p.id for p in prev.placements} - {p.id for p in keep}
        self.plan = replace(
            self.plan,
            result=KernelResult(
                keep,
                {k: v for k, v in prev.unscheduled.items() if k not in freed},
                prev.objective,
                tuple(x for x in prev.interrupted if x not in freed),
                prev.stats,
                prev.prepared,
            ),
        )
        self.executing.clear()
        v = self.replan(now, "conditions unsafe")
        return Version(v.plan, v.trigger, running)

    def safe(self, now: dt.datetime) -> Version | None:
        if self.unsafe_until is None:
            return None
        self.unsafe_until = None
        return self.replan(now, "conditions safe again")

    def roll_over(self, now: dt.datetime) -> Version | None:
        """Move to the night in progress (or next) at ``now``; None if it is already the one."""
        night = tonight(self.site, now)
        if night == self.night:
            return None
        self.night = night
        self.plan = None
        self.windows.clear()
        self.failed_tonight.clear()
        self.executing.clear()
        self.unsafe_until = None
        # Requests with nothing left to do on this night or later are dropped.
        for rid, r in list(self.requests.items()):
            alive = [
                s
                for s in r.sequences
                if kernel_id(rid, s) not in self.done
                and kernel_id(rid, s) not in self.dead
                and (s.date == "tonight" or s.date + dt.timedelta(days=s.carry_over_nights) >= night)
            ]
            if not alive:
                del self.requests[rid]
        return self.replan(now, f"night {night}", full=True)
