import itertools

import pytest
from pyros_common.domain.requests.states import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    State,
    can_transition,
    transition,
)

ALLOWED = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]
FORBIDDEN = [(a, b) for a, b in itertools.product(State, State) if b not in TRANSITIONS[a]]


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TERMINAL == {State.COMPLETED, State.FAILED, State.REJECTED, State.CANCELLED}


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_allowed_transition(current: State, target: State) -> None:
    assert transition(current, target) is target
    assert transition(current.value, target.value) is target
    assert can_transition(current, target)


@pytest.mark.parametrize(("current", "target"), FORBIDDEN)
def test_every_other_pair_raises_naming_both_states(current: State, target: State) -> None:
    with pytest.raises(IllegalTransition) as err:
        transition(current, target)
    assert err.value.current is current and err.value.target is target
    assert f"{current.value} -> {target.value}" in str(err.value)
    assert not can_transition(current, target)


def test_counts() -> None:
    assert len(ALLOWED) + len(FORBIDDEN) == len(State) ** 2
    assert len(ALLOWED) == 18


def test_unknown_state_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bogus"):
        transition("draft", "bogus")
