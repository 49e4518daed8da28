"""The one priority scheme of PyROS: routines shows it, the scheduler weighs with it.

A sequence's priority is its request's override (alert strategies set one), else its
program grade's base, plus the sequence's ``priority_offset`` (-5..+5). Its scheduling
weight is that priority scaled to a few units, raised 20 % per night carried over;
alert requests sit above every routine request (``ALERT_BASE`` + their priority).
"""

from __future__ import annotations

from enum import StrEnum

from pyros_common.domain.programs.quotas import Grade

__all__ = [
    "ALERT_BASE",
    "DEFAULT_DECAY_INDEX",
    "DEFAULT_DECAY_SCALE_S",
    "GRADE_PRIORITY",
    "PRIORITY_BASE",
    "PriorityClass",
    "effective_priority",
    "time_critical_factor",
    "weight",
]


class PriorityClass(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


# C is low priority, not refused: it fills gaps.
GRADE_PRIORITY: dict[Grade, PriorityClass] = {
    Grade.A: PriorityClass.HIGH,
    Grade.B: PriorityClass.MEDIUM,
    Grade.C: PriorityClass.LOW,
}
# Bases 20 apart so a sequence's priority_offset (-5..+5) never reaches another class.
PRIORITY_BASE: dict[PriorityClass, int] = {
    PriorityClass.HIGH: 50,
    PriorityClass.MEDIUM: 30,
    PriorityClass.LOW: 10,
}


def effective_priority(grade: Grade | str, priority_offset: int = 0, override: int | None = None) -> int:
    """A sequence's priority (higher first): the request's override, else its program grade's
    base, plus the sequence's offset."""
    if not -5 <= priority_offset <= 5:
        raise ValueError(f"priority_offset must be within [-5, 5], got {priority_offset}")
    base = override if override is not None else PRIORITY_BASE[GRADE_PRIORITY[Grade(grade)]]
    return base + priority_offset


ALERT_BASE = 1000.0
_CARRY_BONUS = 0.2  # per night carried over
_SCALE = 10.0  # priority 50 -> weight 5


def weight(
    *,
    grade: Grade | str,
    priority_offset: int = 0,
    nights_carried: int = 0,
    alert_priority: int | None = None,
) -> float:
    """Scheduling weight (dimensionless) of a sequence; ``alert_priority`` set for alert requests."""
    if alert_priority is not None:
        return ALERT_BASE + effective_priority(grade, priority_offset, override=alert_priority)
    return effective_priority(grade, priority_offset) / _SCALE * (1.0 + _CARRY_BONUS * nights_carried)


# Time-critical alerts: an afterglow fades roughly as t^-1 from its trigger, so an alert's
# value per second of observation falls with the time from the trigger to its start. The
# alert strategies give the index (their YAML ``decay_index``); these are the defaults.
DEFAULT_DECAY_INDEX = 1.0
DEFAULT_DECAY_SCALE_S = 600.0  # the first ten minutes count about as much as the trigger itself


def time_critical_factor(
    age_s: float, index: float = DEFAULT_DECAY_INDEX, scale_s: float = DEFAULT_DECAY_SCALE_S
) -> float:
    """The share of an alert's weight left ``age_s`` seconds after its trigger:
    ``(1 + age/scale) ** -index`` (1 at the trigger and before it, never below 0)."""
    if scale_s <= 0:
        raise ValueError(f"decay scale must be > 0, got {scale_s}")
    if index == 0.0 or age_s <= 0.0:
        return 1.0
    return float((1.0 + age_s / scale_s) ** -index)
