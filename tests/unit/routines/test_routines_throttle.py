"""The login throttle's rule: failures per key in a sliding window, bounded memory."""

from __future__ import annotations

from pyros_routines.domain.throttle import Throttle


def test_the_nth_failure_closes_the_door_until_the_oldest_leaves_the_window() -> None:
    t = Throttle(max_failures=3, window_s=60)
    for now in (0.0, 10.0, 20.0):
        assert t.retry_after_s("alice", now) == 0
        t.failed("alice", now)
    assert t.retry_after_s("alice", 20.0) == 40  # the failure at 0 leaves at 60
    assert t.retry_after_s("bob", 20.0) == 0  # keys are apart
    assert t.retry_after_s("alice", 59.5) == 1
    assert t.retry_after_s("alice", 60.0) == 0  # one slot again
    t.failed("alice", 60.0)
    assert t.retry_after_s("alice", 60.0) == 10  # now the one at 10 must leave


def test_success_forgets_the_failures() -> None:
    t = Throttle(max_failures=2, window_s=60)
    t.failed("alice", 0.0)
    t.succeeded("alice")
    t.failed("alice", 1.0)
    assert t.retry_after_s("alice", 1.0) == 0


def test_memory_stays_bounded_under_a_spray_of_keys() -> None:
    t = Throttle(max_failures=5, window_s=60, max_keys=100)
    for i in range(10_000):
        t.failed(f"guess{i}", float(i) / 1000)
    assert len(t._failures) <= 100
