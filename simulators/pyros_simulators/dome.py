"""A simulated dome: a shutter that takes time to open or close, and an azimuth that can follow the mount."""

from __future__ import annotations

from typing import Literal

from pyros_common.clock import Clock

from pyros_simulators.base import Aborted, SimulatedDevice, SimulatorError

Shutter = Literal["open", "closed", "opening", "closing"]


class Dome(SimulatedDevice):
    """Shutter open/close in ``shutter_s``; azimuth moves at ``rate_deg_s`` the shorter way round."""

    def __init__(
        self,
        clock: Clock,
        *,
        shutter_s: float = 30.0,
        rate_deg_s: float = 5.0,
        name: str = "dome",
    ) -> None:
        super().__init__(clock, name)
        self.shutter_s = shutter_s
        self.rate_deg_s = rate_deg_s
        self.shutter: Shutter = "closed"
        self.azimuth_deg = 0.0
        self.slaved = False  # when True, the driver moves the dome to the mount's azimuth after each slew

    @staticmethod
    def _distance(a: float, b: float) -> float:
        d = abs(a - b) % 360.0
        return min(d, 360.0 - d)

    def rotation_time_s(self, azimuth_deg: float) -> float:
        return self._distance(self.azimuth_deg, azimuth_deg) / self.rate_deg_s

    async def _shutter(self, target: Literal["open", "closed"]) -> None:
        self._begin()
        if self.shutter == target:
            return
        self.shutter = "opening" if target == "open" else "closing"
        self.state = "busy"
        try:
            await self._wait(self.shutter_s)
        except Aborted:
            self.state = "idle"  # the shutter stays half-way, reported as opening/closing
            raise
        self.shutter = target
        self.state = "idle"

    async def open(self) -> None:
        """Open the shutter."""
        await self._shutter("open")

    async def close(self) -> None:
        """Close the shutter."""
        await self._shutter("closed")

    async def goto(self, azimuth_deg: float) -> None:
        """Rotate to ``azimuth_deg`` (from north through east)."""
        if not 0.0 <= azimuth_deg < 360.0:
            raise SimulatorError(f"azimuth_deg={azimuth_deg} outside [0, 360)")
        self._begin()
        start, duration = self.azimuth_deg, self.rotation_time_s(azimuth_deg)
        self.state = "busy"
        t0 = self.clock.monotonic()
        try:
            await self._wait(duration)
        except Aborted:
            frac = min(1.0, (self.clock.monotonic() - t0) / duration) if duration > 0 else 1.0
            delta = ((azimuth_deg - start + 180.0) % 360.0) - 180.0
            self.azimuth_deg = (start + frac * delta) % 360.0
            self.state = "idle"
            raise
        self.azimuth_deg = azimuth_deg
        self.state = "idle"
