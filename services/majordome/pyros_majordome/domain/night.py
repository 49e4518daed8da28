"""The night as a state machine: the table is the specification, anything else raises.

    day -> dusk -> running <-> paused -> dawn -> closing -> day

``dusk``: the night starts, majordome asks for the night's schedule and opens the dome if it
is safe. ``running``: sequences are dispatched at their planned start. ``paused``: a blocking
device failed or it is unsafe (exposure aborted, telescope parked, dome closed). ``dawn``:
park and close, then bias and dark frames. ``closing``: checking that the dome and the
telescope really are closed before the day.
"""

from __future__ import annotations

from enum import StrEnum


class NightState(StrEnum):
    DAY = "day"
    DUSK = "dusk"
    RUNNING = "running"
    PAUSED = "paused"
    DAWN = "dawn"
    CLOSING = "closing"


N = NightState

TRANSITIONS: dict[NightState, frozenset[NightState]] = {
    N.DAY: frozenset({N.DUSK}),
    N.DUSK: frozenset({N.RUNNING, N.PAUSED, N.DAWN}),
    N.RUNNING: frozenset({N.PAUSED, N.DAWN}),
    N.PAUSED: frozenset({N.RUNNING, N.DAWN}),
    N.DAWN: frozenset({N.CLOSING}),
    N.CLOSING: frozenset({N.DAY}),
}


class IllegalNightTransition(ValueError):
    """A change the night's table does not allow."""

    def __init__(self, current: NightState, target: NightState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current]))
        super().__init__(f"illegal night transition {current} -> {target} (allowed: {allowed})")


def transition(current: NightState | str, target: NightState | str) -> NightState:
    """``target`` if the table allows ``current -> target``; IllegalNightTransition otherwise."""
    cur, tgt = NightState(current), NightState(target)
    if tgt not in TRANSITIONS[cur]:
        raise IllegalNightTransition(cur, tgt)
    return tgt
