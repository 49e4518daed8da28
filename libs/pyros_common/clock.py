"""The clock port. Nothing else in PyROS reads the wall clock.

``SystemClock`` is real time. ``SimulatedClock`` is driven by hand (``advance``) or runs
faster than real time (``speed``), so a whole night can be simulated in seconds and tests
are deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable
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


class VirtualClock:
    """Discrete-event time for a night faster than real time (``pyros night --speed max``).

    Time stands still while anything works and jumps to the earliest sleeper's deadline once
    everything waits: ``run`` drives it, with ``idle()`` saying whether the rest of the
    process (the bus) has nothing left to do. Work done off the event loop (a thread) holds
    the time with ``async with clock.hold():``, so an exposure never ends while its image is
    still being written. Processing takes no night time at all: latencies measured on this
    clock are those of the design (slews, exposures, timeouts), not of the machine.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")
        self._origin = start.astimezone(UTC)
        self._offset = 0.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._holds = 0
        self.activity = 0  # bumped by every sleep and wake-up: "something happened"

    @property
    def speed(self) -> float:
        return float("inf")

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self._offset

    async def sleep(self, seconds: float) -> None:
        self.activity += 1
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (self._offset + seconds, self._seq, fut))
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()

    def hold(self) -> _Hold:
        """``async with clock.hold():`` around work the clock must wait for (threads)."""
        return _Hold(self)

    def next_deadline(self) -> datetime | None:
        self._drop_cancelled()
        return None if not self._waiters else self._origin + timedelta(seconds=self._waiters[0][0])

    def _drop_cancelled(self) -> None:
        while self._waiters and self._waiters[0][2].done():
            heapq.heappop(self._waiters)

    def advance_to_next(self) -> bool:
        """Jump to the earliest deadline and wake everyone due; False when nobody sleeps."""
        self._drop_cancelled()
        if not self._waiters:
            return False
        self._offset = max(self._offset, self._waiters[0][0])
        while self._waiters and self._waiters[0][0] <= self._offset + 1e-9:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
        self.activity += 1
        return True

    async def run(
        self,
        *,
        until: datetime,
        idle: Callable[[], bool] = lambda: True,
        quiet_rounds: int = 30,
        on_tick: Callable[[datetime], None] | None = None,
    ) -> None:
        """Drive the time to ``until``: let the loop run until it is quiet, then jump ahead."""
        while self.now() < until:
            quiet = 0
            while quiet < quiet_rounds:
                mark = self.activity
                await asyncio.sleep(0)
                if self._holds == 0 and idle() and mark == self.activity:
                    quiet += 1
                else:
                    quiet = 0
                    if self._holds:
                        await asyncio.sleep(0.001)  # a thread works: let it
            nxt = self.next_deadline()
            if nxt is None or nxt > until:
                self._offset = max(self._offset, (until - self._origin).total_seconds())
                self.activity += 1
                break
            self.advance_to_next()
            if on_tick is not None:
                on_tick(self.now())


class _Hold:
    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    async def __aenter__(self) -> None:
        self._clock._holds += 1

    async def __aexit__(self, *exc: object) -> None:
        self._clock._holds -= 1
        self._clock.activity += 1


def hold(clock: Clock) -> contextlib.AbstractAsyncContextManager[None]:
    """Hold a virtual clock while work runs off the event loop; a no-op on the other clocks."""
    if isinstance(clock, VirtualClock):
        return clock.hold()
    return contextlib.nullcontext()
