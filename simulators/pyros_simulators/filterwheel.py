"""A simulated filter wheel: named slots on a circle, a fixed time per slot moved."""

from __future__ import annotations

from collections.abc import Sequence

from pyros_common.clock import Clock

from pyros_simulators.base import Aborted, SimulatedDevice, SimulatorError

DEFAULT_FILTERS: tuple[str, ...] = ("CLEAR", "g", "r", "i", "z", "y")


class FilterWheel(SimulatedDevice):
    """``move`` takes ``step_s`` per slot along the shorter way round."""

    def __init__(
        self,
        clock: Clock,
        filters: Sequence[str] = DEFAULT_FILTERS,
        *,
        step_s: float = 1.5,
        name: str = "filterwheel",
    ) -> None:
        super().__init__(clock, name)
        if not filters or len(set(filters)) != len(filters):
            raise ValueError("filters must be a non-empty list of distinct names")
        self.filters = tuple(filters)
        self.step_s = step_s
        self.position = 0

    @property
    def current_filter(self) -> str:
        return self.filters[self.position]

    def slot_of(self, filter_name: str) -> int:
        """Slot index of ``filter_name``; SimulatorError listing the filters otherwise."""
        try:
            return self.filters.index(filter_name)
        except ValueError:
            raise SimulatorError(
                f"no filter {filter_name!r} in {self.name}; it holds {list(self.filters)}"
            ) from None

    def move_time_s(self, slot: int) -> float:
        n = len(self.filters)
        steps = abs(slot - self.position) % n
        return min(steps, n - steps) * self.step_s

    async def move(self, target: str | int) -> str:
        """Move to a filter (by name) or a slot (by index); returns the filter now in the beam."""
        slot = self.slot_of(target) if isinstance(target, str) else target
        if not 0 <= slot < len(self.filters):
            raise SimulatorError(f"slot {slot} outside [0, {len(self.filters) - 1}]")
        self._begin()
        self.state = "busy"
        try:
            await self._wait(self.move_time_s(slot))
        except Aborted:
            self.state = "idle"
            raise
        self.position = slot
        self.state = "idle"
        return self.current_filter
