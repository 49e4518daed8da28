"""What every simulated device shares: a state, fault injection and a clock-driven wait."""

from __future__ import annotations

import asyncio
from typing import Literal

from pyros_common.clock import Clock

DeviceState = Literal["idle", "busy", "slewing", "exposing", "parked", "error", "offline"]


class SimulatorError(Exception):
    """A simulated device refused or failed a command; the message is meant for people."""


class DeviceFault(SimulatorError):
    """A fault injected by a test (cable unplugged, motor stalled, ...)."""


class Aborted(SimulatorError):
    """The motion or exposure was aborted."""


class SimulatedDevice:
    """Base of the simulators: state, fault injection, abortable waits on the clock."""

    def __init__(self, clock: Clock, name: str) -> None:
        self.clock = clock
        self.name = name
        self.state: DeviceState = "idle"
        self.error = ""
        self.commands_run = 0
        self._faults: list[str] = []
        self._permanent_fault: str | None = None
        self._offline = False
        self._motion: asyncio.Task[None] | None = None

    # --- fault injection ----------------------------------------------------------------

    def inject_fault(self, message: str, *, times: int | None = 1) -> None:
        """Fail the next ``times`` commands with ``message`` (every command when ``times`` is None)."""
        if times is None:
            self._permanent_fault = message
        else:
            self._faults.extend([message] * times)

    def clear_faults(self) -> None:
        """Remove every injected fault and leave the error state."""
        self._faults.clear()
        self._permanent_fault = None
        if self.state == "error":
            self.state = "idle"
        self.error = ""

    def set_offline(self, offline: bool = True) -> None:
        """Simulate a device that stopped answering (power, network)."""
        self._offline = offline
        self.state = "offline" if offline else "idle"

    @property
    def offline(self) -> bool:
        return self._offline

    def _begin(self) -> None:
        """Called at the start of every command: raises on offline, busy or an injected fault."""
        if self._offline:
            raise SimulatorError(f"{self.name} is offline")
        fault = self._permanent_fault or (self._faults.pop(0) if self._faults else None)
        if fault is not None:
            self.state = "error"
            self.error = fault
            raise DeviceFault(f"{self.name}: {fault}")
        if self._motion is not None and not self._motion.done():
            raise SimulatorError(f"{self.name} is busy ({self.state})")
        self.commands_run += 1
        self.error = ""

    # --- abortable waits ----------------------------------------------------------------

    async def _wait(self, seconds: float) -> None:
        """Wait on the clock; raises Aborted when ``abort`` is called meanwhile."""
        self._motion = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await self._motion
        except asyncio.CancelledError:
            if self._motion.cancelled() and not _current_task_cancelling():
                raise Aborted(f"{self.name}: aborted") from None
            # the caller itself was cancelled (gateway timeout, shutdown): the device stops where it is
            self.state = "idle"
            raise
        finally:
            self._motion = None

    def _stop_motion(self) -> bool:
        """Cancel the current wait, if any; True when something was moving."""
        if self._motion is not None and not self._motion.done():
            self._motion.cancel()
            return True
        return False

    async def abort(self) -> None:
        """Stop whatever the device is doing."""
        if self._offline:
            raise SimulatorError(f"{self.name} is offline")
        self._stop_motion()
        await asyncio.sleep(0)


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
