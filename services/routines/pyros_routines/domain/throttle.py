"""Login throttling: failures counted per key (a user name, a client address) in a sliding window.

Pure: the caller passes the time (the clock port's), so the rule is testable without waiting.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Throttle:
    """At most ``max_failures`` failed attempts per key within ``window_s``; then refuse until the
    oldest of them leaves the window."""

    max_failures: int
    window_s: float
    max_keys: int = 100_000  # bounded memory under a spray of names or addresses
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after_s(self, key: str, now: float) -> int:
        """0 when ``key`` may try now, otherwise the whole seconds to wait."""
        q = self._prune(key, now)
        if q is None or len(q) < self.max_failures:
            return 0
        return max(1, math.ceil(q[0] + self.window_s - now))

    def failed(self, key: str, now: float) -> None:
        """Count a failed attempt of ``key`` at ``now``."""
        q = self._prune(key, now)
        if q is None:
            if len(self._failures) >= self.max_keys:
                self._forget_idle(now)
            q = self._failures.setdefault(key, deque())
        q.append(now)
        while len(q) > self.max_failures:
            q.popleft()

    def succeeded(self, key: str) -> None:
        """Forget ``key``'s failures (a user who logs in starts afresh)."""
        self._failures.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def _forget_idle(self, now: float) -> None:
        for key in list(self._failures):
            self._prune(key, now)
        while len(self._failures) >= self.max_keys:  # still full: drop the oldest keys
            self._failures.pop(next(iter(self._failures)))
