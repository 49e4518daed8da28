"""Pure scheduling kernel: intervals, durations, weights, windows and transitions.

It knows nothing of astropy, databases or the bus; times are floats in seconds on any
axis shared by the windows and the night (the mapping uses seconds from the night's start).

Input::

    KSequence(id, duration_s, weight, windows, mandatory=False, request_id="",
              all_or_nothing=False, program="")
    KernelInput(sequences, night=(start_s, end_s), n_telescopes=1, quotas_s={program: s},
                transition=TransitionModel)   # cost(a_index, b_index) -> seconds

``GreatCircleTransition(ra_deg, dec_deg, slew_rate_deg_s=, settle_s=, filters=,
filter_change_s=)`` is the usual transition model (with a vectorised ``costs_from``);
``MatrixTransition`` and ``ZeroTransition`` are the others.

Calls::

    schedule(inp, *, iterations=None, seed=0) -> KernelResult
    reschedule(previous, inp, now_s, *, executing=None, preempt_weight=1000.0,
               iterations=20, seed=0) -> KernelResult
    schedule_exact(inp, *, max_time_s=5.0, hint=None) -> KernelResult   # CP-SAT, small n
    relax_and_repair(inp, plan, *, max_time_s=2.0) -> KernelResult      # CP-SAT on the relaxation
    improve_windows(inp, plan, *, budget_s=2.0, ...) -> KernelResult     # CP-SAT window LNS
    objective(inp, placements) -> float      # sum of weight × seconds observed
    validate(inp, result, *, now_s=None) -> list[str]

``KernelResult`` has ``placements`` (id, telescope, start_s, end_s), ``unscheduled``
({id: Unscheduled(id, reason, by)}), ``objective``, ``interrupted`` and ``stats``.

Rules: the objective is the sum of weight × duration; a placement lies inside one window
and inside the night; consecutive placements on a telescope leave at least the transition
time between them; a program's placed seconds stay within its quota. A request whose
sequences carry ``mandatory`` or ``all_or_nothing`` stands or falls as one: if any of its
essential sequences (mandatory ones, and every sequence of an all-or-nothing request) is
left out, all its sequences are withdrawn with reason "mandatory sibling failed".

Method: a constructive pass in priority order (weight, then the least flexible first)
using per-telescope sorted timelines and bisection (O(n log n) plus the scan of the few
gaps inside each window), then ruin-and-recreate moves on stretches of a telescope,
then a final gap filling over vectorised candidate filtering. ``schedule_exact`` solves
small instances exactly with OR-Tools CP-SAT (circuit per telescope, warm-started from the
heuristic plan); the planner uses it up to ``EXACT_MAX_SEQUENCES`` visible sequences.
``reschedule`` keeps what ran and what runs, inserts alerts first (interrupting the running sequence when that lets
the alert start earlier), repairs locally and fills the freed gaps.
"""

from pyros_scheduler.kernel.check import objective, validate
from pyros_scheduler.kernel.exact import (
    CIRCUIT_MAX_SEQUENCES,
    EXACT_MAX_SEQUENCES,
    improve_windows,
    relax_and_repair,
    schedule_exact,
)
from pyros_scheduler.kernel.model import (
    KernelInput,
    KernelResult,
    KSequence,
    Placement,
    Reason,
    Unscheduled,
    Window,
)
from pyros_scheduler.kernel.solver import reschedule, schedule, without_cycle_collector
from pyros_scheduler.kernel.transitions import (
    GreatCircleTransition,
    MatrixTransition,
    TransitionModel,
    ZeroTransition,
)

__all__ = [
    "CIRCUIT_MAX_SEQUENCES",
    "EXACT_MAX_SEQUENCES",
    "GreatCircleTransition",
    "KSequence",
    "KernelInput",
    "KernelResult",
    "MatrixTransition",
    "Placement",
    "Reason",
    "TransitionModel",
    "Unscheduled",
    "Window",
    "ZeroTransition",
    "improve_windows",
    "objective",
    "relax_and_repair",
    "reschedule",
    "schedule",
    "schedule_exact",
    "validate",
    "without_cycle_collector",
]
