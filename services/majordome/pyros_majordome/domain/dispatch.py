"""What to run next, from the latest schedule, what runs and what is done (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

# Device kinds whose failure stops observing; others (the NIR camera) only drop their albums.
DEFAULT_BLOCKING: frozenset[str] = frozenset({"telescope", "plc", "cam-vis", "dome"})
BAD_STATES: frozenset[str] = frozenset({"offline", "error"})
# A sequence may start this early (seconds) before its planned start: slews take longer anyway.
EARLY_S = 1.0


@dataclass(frozen=True)
class Planned:
    """One scheduled sequence as majordome needs it."""

    request_id: str
    sequence_id: str
    start: dt.datetime
    end: dt.datetime


def next_to_run(
    plan: Iterable[Planned], *, now: dt.datetime, running: str | None, finished: Collection[str]
) -> Planned | None:
    """The sequence to dispatch at ``now``: the earliest planned one not finished, due now,
    and not already running. None when nothing is due (or something already runs)."""
    if running is not None:
        return None
    for p in sorted(plan, key=lambda p: p.start):
        if p.sequence_id in finished:
            continue
        if p.end <= now:
            continue  # its slot has passed: the scheduler replans what was missed
        if p.start <= now + dt.timedelta(seconds=EARLY_S):
            return p
        return None
    return None


def next_start(plan: Iterable[Planned], *, now: dt.datetime, finished: Collection[str]) -> dt.datetime | None:
    """When the next not-finished sequence is due (None: nothing more tonight)."""
    starts = [p.start for p in plan if p.sequence_id not in finished and p.end > now]
    return min(starts) if starts else None


def blocking_failures(states: Mapping[str, tuple[str, str]], blocking: Collection[str]) -> list[str]:
    """The blocking devices in a bad state, as 'device: why' (``states``: id -> (state, error))."""
    out = []
    for device, (state, error) in sorted(states.items()):
        if device in blocking and state in BAD_STATES:
            out.append(f"{device} {state}" + (f" ({error})" if error else ""))
    return out
