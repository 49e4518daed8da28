"""What every simulated device shares: a state, fault injection and a clock-driven wait."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, get_args

from pyros_common.clock import Clock

DeviceState = Literal["idle", "busy", "slewing", "exposing", "parked", "error", "offline"]
Fault = Literal["disconnect", "hang", "refuse", "clear"]
FAULTS: tuple[str, ...] = get_args(Fault)


class SimulatorError(Exception):
    """A simulated device refused or failed a command; the message is meant for people."""


class DeviceFault(SimulatorError):
    """A fault injected by a test (cable unplugged, motor stalled, ...)."""


class Aborted(SimulatorError):
    """The motion or exposure was aborted."""


@dataclass(frozen=True)
class FaultState:
    """The faults a device carries now (what the fault API answers)."""

    device: str
    disconnected: bool
    hung: bool
    refusing: str | None
    pending: int  # one-shot faults still queued (inject_fault with times)


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
        self._offline_reason = ""
        self._state_before_offline: DeviceState = "idle"
        self._hung = False
        self._unhung = asyncio.Event()
        self._motion: asyncio.Task[None] | None = None

    # --- fault injection ----------------------------------------------------------------

    def inject(self, fault: Fault | str, reason: str = "") -> FaultState:
        """The fault API: ``disconnect``, ``hang`` (commands never end), ``refuse`` (fail with reason), ``clear``."""
        if fault == "disconnect":
            self.set_offline(True, reason or "disconnected")
        elif fault == "hang":
            self._hung = True
            self._unhung.clear()
        elif fault == "refuse":
            self.inject_fault(reason or "command refused", times=None)
        elif fault == "clear":
            self.clear_faults()
            if self._offline:
                self.set_offline(False)
        else:
            raise ValueError(f"unknown fault {fault!r}; known: {list(FAULTS)}")
        return self.faults

    @property
    def faults(self) -> FaultState:
        return FaultState(
            device=self.name,
            disconnected=self._offline,
            hung=self._hung,
            refusing=self._permanent_fault,
            pending=len(self._faults),
        )

    def inject_fault(self, message: str, *, times: int | None = 1) -> None:
        """Fail the next ``times`` commands with ``message`` (every command when ``times`` is None)."""
        if times is None:
            self._permanent_fault = message
        else:
            self._faults.extend([message] * times)

    def clear_faults(self) -> None:
        """Remove every injected fault (a hang included: the held command then finishes) and leave error."""
        self._faults.clear()
        self._permanent_fault = None
        self._hung = False
        self._unhung.set()
        if self.state == "error":
            self.state = "idle"
        self.error = ""

    def set_offline(self, offline: bool = True, reason: str = "") -> None:
        """Simulate a device that stopped answering (power, network); back online it is as it was."""
        if offline and not self._offline:
            self._state_before_offline = self.state
        elif not offline and self._offline:
            self.state = self._state_before_offline
        self._offline = offline
        self._offline_reason = reason if offline else ""
        if offline:
            self.state = "offline"

    @property
    def offline(self) -> bool:
        return self._offline

    @property
    def offline_reason(self) -> str:
        return self._offline_reason

    @property
    def hung(self) -> bool:
        return self._hung

    def _begin(self) -> None:
        """Called at the start of every command: raises on offline, busy or an injected fault."""
        if self._offline:
            raise SimulatorError(self._offline_message())
        fault = self._permanent_fault or (self._faults.pop(0) if self._faults else None)
        if fault is not None:
            self.state = "error"
            self.error = fault
            raise DeviceFault(f"{self.name}: {fault}")
        if self._motion is not None and not self._motion.done():
            raise SimulatorError(f"{self.name} is busy ({self.state})")
        self.commands_run += 1
        self.error = ""

    def _offline_message(self) -> str:
        why = f" ({self._offline_reason})" if self._offline_reason else ""
        return f"{self.name} is offline{why}"

    # --- abortable waits ----------------------------------------------------------------

    async def _hold(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
        while self._hung:  # an injected hang: the command never ends until cleared or aborted
            await self._unhung.wait()

    async def _wait(self, seconds: float) -> None:
        """Wait on the clock; raises Aborted when ``abort`` is called meanwhile."""
        self._motion = asyncio.ensure_future(self._hold(seconds))
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
            raise SimulatorError(self._offline_message())
        self._stop_motion()
        await asyncio.sleep(0)


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
