"""Request and sequence states, and the only transitions allowed between them.

The table is the specification: anything not listed raises IllegalTransition. Requests and
sequences share it (a request is ``executing`` while one of its sequences is).
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum


class State(StrEnum):
    """Lifecycle state of a request or a sequence."""

    DRAFT = "draft"  # being edited by the astronomer, invisible to the scheduler
    SUBMITTED = "submitted"  # sent for validation (visibility, quota)
    ACCEPTED = "accepted"  # valid and charged to the quota, waiting for a schedule
    SCHEDULED = "scheduled"  # placed in the current schedule of a night
    EXECUTING = "executing"  # the observer is taking its images
    COMPLETED = "completed"  # every image taken
    PARTIAL = "partial"  # some images taken; the rest will not be (or goes back via carry-over)
    FAILED = "failed"  # could not be (fully) observed: expired, device fault, never visible
    REJECTED = "rejected"  # refused at submission (quota, visibility, malformed)
    CANCELLED = "cancelled"  # withdrawn by its owner or an operator


S = State

TRANSITIONS: dict[State, frozenset[State]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.ACCEPTED, S.REJECTED, S.CANCELLED}),
    # accepted -> failed: its dates passed without a slot (carry-over exhausted)
    S.ACCEPTED: frozenset({S.SCHEDULED, S.FAILED, S.CANCELLED}),
    # scheduled -> accepted: dropped from a newer schedule (e.g. an alert took its slot)
    S.SCHEDULED: frozenset({S.EXECUTING, S.ACCEPTED, S.FAILED, S.CANCELLED}),
    # executing -> accepted: interrupted (weather, alert) before any image; back in the pool
    S.EXECUTING: frozenset({S.COMPLETED, S.PARTIAL, S.FAILED, S.ACCEPTED, S.CANCELLED}),
    # partial -> accepted: carried over to a later night to finish
    S.PARTIAL: frozenset({S.ACCEPTED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL: frozenset[State] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


class IllegalTransition(ValueError):
    """A state change that the transition table does not allow."""

    def __init__(self, current: State, target: State) -> None:
        self.current = current
        self.target = target
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal state)"
        super().__init__(
            f"illegal transition {current.value} -> {target.value} (allowed from {current.value}: {allowed})"
        )


def can_transition(current: State | str, target: State | str) -> bool:
    """Whether ``current -> target`` is in the table."""
    return State(target) in TRANSITIONS[State(current)]


def transition(current: State | str, target: State | str) -> State:
    """The new state ``target`` if ``current -> target`` is allowed; IllegalTransition otherwise."""
    cur, tgt = State(current), State(target)
    if tgt not in TRANSITIONS[cur]:
        raise IllegalTransition(cur, tgt)
    return tgt


def advance(current: str, target: str) -> str:
    """Walk the state table from ``current`` to ``target`` by its shortest path; IllegalTransition if none."""
    start, goal = State(current), State(target)
    if start == goal:
        return goal
    prev: dict[State, State] = {}
    queue = deque([start])
    while queue:
        s = queue.popleft()
        for n in sorted(TRANSITIONS[s]):
            if n not in prev and n != start:
                prev[n] = s
                queue.append(n)
    if goal not in prev:
        raise IllegalTransition(start, goal)
    path = [goal]
    while path[-1] != start:
        path.append(prev[path[-1]])
    state = start
    for step in reversed(path[:-1]):
        state = transition(state, step)
    return state
