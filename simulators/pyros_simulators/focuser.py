"""A simulated focuser: a stepper moving at a fixed rate, and where the best focus is."""

from __future__ import annotations

from dataclasses import dataclass

from pyros_common.clock import Clock

from pyros_simulators.base import SimulatedDevice, SimulatorError


@dataclass(frozen=True)
class FocuserConfig:
    """Travel, speed and optics: the best focus (clear filter) and how fast the image blurs away from it."""

    max_position: int = 50_000
    steps_per_s: float = 1000.0
    settle_s: float = 0.5
    best_position: int = 25_000
    start_position: int = 25_000
    blur_arcsec_per_step: float = 0.01  # defocus blur (FWHM, added in quadrature to the seeing)


class Focuser(SimulatedDevice):
    """``move`` takes |delta| / rate + settle; ``blur_arcsec`` tells the camera how defocused it is."""

    def __init__(self, clock: Clock, config: FocuserConfig | None = None, name: str = "focuser") -> None:
        super().__init__(clock, name)
        self.config = config or FocuserConfig()
        self.position = self.config.start_position

    def move_time_s(self, position: int) -> float:
        return abs(position - self.position) / self.config.steps_per_s + self.config.settle_s

    def blur_arcsec(self, focus_offset_steps: int = 0) -> float:
        """Defocus FWHM [arcsec] for a filter whose best focus is ``focus_offset_steps`` from the clear one."""
        best = self.config.best_position + focus_offset_steps
        return abs(self.position - best) * self.config.blur_arcsec_per_step

    async def move(self, position: int) -> int:
        """Go to ``position`` [steps]; stops part way on abort."""
        if not 0 <= position <= self.config.max_position:
            raise SimulatorError(f"focus position {position} outside [0, {self.config.max_position}]")
        self._begin()
        start, duration = self.position, self.move_time_s(position)
        t0 = self.clock.monotonic()
        self.state = "busy"
        try:
            await self._wait(duration)
        except BaseException:
            moving = duration - self.config.settle_s
            frac = min(1.0, (self.clock.monotonic() - t0) / moving) if moving > 0 else 1.0
            self.position = round(start + frac * (position - start))
            self.state = "idle"
            raise
        self.position = position
        self.state = "idle"
        return position
