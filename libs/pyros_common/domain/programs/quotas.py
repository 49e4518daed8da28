"""Scientific programs' quotas: semesters, grades and the time ledger (pure functions).

Semesters are calendar halves: ``A`` = 1 January - 30 June, ``B`` = 1 July - 31 December.
A night belongs to the semester of the local date of its evening. A program's quota is a
percentage of the semester's observable time, i.e. the sum of its astronomical nights
(Sun below the site's night altitude) computed by ``sky.night.night_time_s`` (cached; astropy loads only when it is called).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from pyros_common.domain.sky.sites import Site

__all__ = [
    "Grade",
    "QuotaDecision",
    "QuotaLedger",
    "Semester",
    "allocated_s",
    "book",
    "check_quota",
    "consume",
    "give_back",
    "semester_night_time_s",
]


@dataclass(frozen=True, order=True)
class Semester:
    """Half a calendar year: half 'A' (Jan-Jun) or 'B' (Jul-Dec)."""

    year: int
    half: str

    def __post_init__(self) -> None:
        if self.half not in ("A", "B"):
            raise ValueError(f"semester half must be 'A' or 'B', got {self.half!r}")

    @classmethod
    def of(cls, night: dt.date) -> Semester:
        """The semester a night (local date of its evening) belongs to."""
        return cls(night.year, "A" if night.month <= 6 else "B")

    @classmethod
    def parse(cls, text: str) -> Semester:
        """From '2025A' / '2025B'."""
        if len(text) != 5 or not text[:4].isdigit():
            raise ValueError(f"semester must look like '2025A', got {text!r}")
        return cls(int(text[:4]), text[4].upper())

    @property
    def first_night(self) -> dt.date:
        return dt.date(self.year, 1 if self.half == "A" else 7, 1)

    @property
    def last_night(self) -> dt.date:
        return dt.date(self.year, 6, 30) if self.half == "A" else dt.date(self.year, 12, 31)

    def __str__(self) -> str:
        return f"{self.year}{self.half}"


def semester_night_time_s(site: Site, semester: Semester) -> float:
    """Observable (astronomical night) time of a semester at a site, seconds. Cached."""
    from pyros_common.domain.sky.night import night_time_s  # astropy only where it is used

    return night_time_s(site, semester.first_night, semester.last_night)


def allocated_s(quota_percent: float, semester_night_s: float) -> float:
    """Seconds granted by a quota of ``quota_percent`` % of the semester's night time."""
    if not 0.0 <= quota_percent <= 100.0:
        raise ValueError(f"quota_percent must be within [0, 100], got {quota_percent}")
    return quota_percent / 100.0 * semester_night_s


class Grade(StrEnum):
    """A program's grade from the time allocation committee."""

    A = "A"
    B = "B"
    C = "C"


@dataclass(frozen=True)
class QuotaDecision:
    """The outcome of a quota check; ``reason`` says why when refused."""

    ok: bool
    over_s: float = 0.0
    reason: str | None = None


def _h(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def check_quota(
    program_allocated_s: float, booked_s: float, used_s: float, request_s: float
) -> QuotaDecision:
    """Whether ``request_s`` more seconds fit in the program's allocation, given time already
    booked (accepted, not yet observed) and used (observed)."""
    for name, value in (
        ("program_allocated_s", program_allocated_s),
        ("booked_s", booked_s),
        ("used_s", used_s),
        ("request_s", request_s),
    ):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    over = used_s + booked_s + request_s - program_allocated_s
    if over <= 0:
        return QuotaDecision(ok=True)
    return QuotaDecision(
        ok=False,
        over_s=over,
        reason=(
            f"over quota by {over:.0f} s ({_h(over)}): requested {_h(request_s)}, "
            f"remaining {_h(max(0.0, program_allocated_s - used_s - booked_s))} "
            f"(allocated {_h(program_allocated_s)}, used {_h(used_s)}, booked {_h(booked_s)})"
        ),
    )


@dataclass(frozen=True)
class QuotaLedger:
    """A program's time account for one semester, seconds."""

    allocated_s: float
    booked_s: float = 0.0
    used_s: float = 0.0

    @property
    def remaining_s(self) -> float:
        return self.allocated_s - self.booked_s - self.used_s

    def check(self, request_s: float) -> QuotaDecision:
        return check_quota(self.allocated_s, self.booked_s, self.used_s, request_s)


def book(ledger: QuotaLedger, request_s: float) -> QuotaLedger:
    """Charge an accepted request; ValueError carrying the refusal reason if it does not fit."""
    decision = ledger.check(request_s)
    if not decision.ok:
        raise ValueError(decision.reason)
    return replace(ledger, booked_s=ledger.booked_s + request_s)


def _settle(ledger: QuotaLedger, booked_s: float, used_s: float) -> QuotaLedger:
    if booked_s < 0 or used_s < 0:
        raise ValueError("booked_s and used_s must be >= 0")
    if booked_s > ledger.booked_s + 1e-6:
        raise ValueError(f"cannot release {booked_s} s: only {ledger.booked_s} s booked")
    return replace(ledger, booked_s=max(0.0, ledger.booked_s - booked_s), used_s=ledger.used_s + used_s)


def consume(ledger: QuotaLedger, booked_s: float, used_s: float) -> QuotaLedger:
    """A sequence was observed: its booking becomes ``used_s`` of real time (may differ)."""
    return _settle(ledger, booked_s, used_s)


def give_back(ledger: QuotaLedger, booked_s: float, used_s: float = 0.0) -> QuotaLedger:
    """A sequence was cancelled or failed after ``used_s`` seconds on the sky: only that time
    stays charged, the rest of its booking returns to the program."""
    return _settle(ledger, booked_s, min(used_s, booked_s))
