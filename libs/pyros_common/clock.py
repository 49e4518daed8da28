"""The clock port. Nothing else in PyROS reads the wall clock.

``SystemClock`` is real time. ``SimulatedClock`` is driven by hand (``advance``) or runs
faster than real time (``speed``), so a whole night can be simulated in seconds and tests
are deterministic.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What every service receives to know the time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale, for measuring durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimulatedClock:
    """A clock that starts at ``start`` and runs ``speed`` times faster than real time.

    With ``speed=0`` it only moves when ``advance`` is called; sleepers wake when the
    simulated time reaches their deadline.
    """

    def __init__(self, start: datetime, speed: float = 0.0) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware start time")
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._origin = start.astimezone(UTC)
        self._offset = 0.0
        self._speed = speed
        self._real0 = time.monotonic()
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    @property
    def speed(self) -> float:
        return self._speed

    def _elapsed(self) -> float:
        return self._offset + (time.monotonic() - self._real0) * self._speed

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=self._elapsed())

    def monotonic(self) -> float:
        return self._elapsed()

    def advance(self, seconds: float) -> None:
        """Move simulated time forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds
        self._wake()

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (not earlier than now)."""
        self.advance((when.astimezone(UTC) - self.now()).total_seconds())

    def _wake(self) -> None:
        t = self._elapsed()
        keep: list[tuple[float, asyncio.Future[None]]] = []
        for deadline, fut in self._waiters:
            if deadline <= t + 1e-9:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((deadline, fut))
        self._waiters = keep

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self._speed > 0:
            await asyncio.sleep(seconds / self._speed)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._elapsed() + seconds, fut))
        await fut
