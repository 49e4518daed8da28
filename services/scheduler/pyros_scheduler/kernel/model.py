"""Kernel data model: sequences, input, placements, reasons and results.

Times are plain floats in seconds on any common axis (the mapping uses seconds since the
start of the night). The kernel never sees dates, targets or telescopes' names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pyros_scheduler.kernel.transitions import TransitionModel, ZeroTransition

Window = tuple[float, float]


@dataclass(frozen=True, slots=True)
class KSequence:
    """One schedulable sequence: a duration, a weight and the windows it may run in.

    ``key``: an opaque fingerprint of what the kernel does not see (target, filter); any
    change of a field, this one included, makes the sequence a new one for ``reschedule``.
    ``decay_ref_s``/``decay_index``/``decay_scale_s``: a time-critical sequence (an alert)
    whose value per second falls with its start t as
    ``(1 + max(0, t - decay_ref_s) / decay_scale_s) ** -decay_index``
    (``pyros_common.domain.programs.priority.time_critical_factor``); None: constant.
    """

    id: str
    duration_s: float
    weight: float
    windows: tuple[Window, ...]
    mandatory: bool = False
    request_id: str = ""
    all_or_nothing: bool = False
    program: str = ""
    key: str = ""
    decay_ref_s: float | None = None
    decay_index: float = 0.0
    decay_scale_s: float = 600.0


@dataclass(frozen=True)
class KernelInput:
    """Everything the kernel needs for one night.

    ``transition.cost(a, b)`` takes indices into ``sequences``. ``quotas_s`` caps the
    summed durations placed per program; programs absent from it are unlimited.
    """

    sequences: Sequence[KSequence]
    night: Window
    n_telescopes: int = 1
    quotas_s: Mapping[str, float] = field(default_factory=dict)
    transition: TransitionModel = field(default_factory=ZeroTransition)

    def __post_init__(self) -> None:
        if self.n_telescopes < 1:
            raise ValueError("n_telescopes must be >= 1")
        if self.night[1] < self.night[0]:
            raise ValueError("night ends before it starts")


class Reason(StrEnum):
    """Why a sequence is not in the plan."""

    NEVER_VISIBLE = "never visible"
    OUTSIDE_NIGHT = "outside night"
    WINDOW_TOO_SHORT = "visible for less than its duration"
    QUOTA_EXHAUSTED = "quota exhausted"
    DISPLACED = "displaced by higher-weight sequence"
    NO_ROOM = "no free slot in its windows"
    MANDATORY_SIBLING_FAILED = "mandatory sibling failed"
    WINDOW_PASSED = "window passed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Unscheduled:
    """A sequence left out, with the reason and, where there is one, the sequence responsible."""

    id: str
    reason: Reason
    by: str | None = None

    def __str__(self) -> str:
        return f"{self.reason.value} {self.by}" if self.by else self.reason.value


@dataclass(frozen=True, slots=True)
class Placement:
    """A sequence placed on a telescope (index from 0) over [start_s, end_s)."""

    id: str
    telescope: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class KernelResult:
    """A night plan: placements sorted by (telescope, start), the rest with reasons."""

    placements: tuple[Placement, ...]
    unscheduled: Mapping[str, Unscheduled]
    objective: float
    interrupted: tuple[str, ...] = ()
    stats: Mapping[str, float] = field(default_factory=dict)
    # Prepared input kept for reschedule(); not part of the result's value.
    prepared: object = field(default=None, compare=False, repr=False)

    def placement(self, seq_id: str) -> Placement | None:
        """The placement of ``seq_id``, if it is placed."""
        for p in self.placements:
            if p.id == seq_id:
                return p
        return None
