"""A simulated filter wheel: named slots on a circle, a fixed time per slot moved, focus offsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyros_common.clock import Clock

from pyros_simulators.base import Aborted, SimulatedDevice, SimulatorError

DEFAULT_FILTERS: tuple[str, ...] = ("CLEAR", "g", "r", "i", "z", "y")
# Filters differ in thickness and index: the best focus moves by these [focuser steps from CLEAR].
DEFAULT_FOCUS_OFFSETS: Mapping[str, int] = {"CLEAR": 0, "g": 120, "r": 80, "i": 60, "z": 40, "y": 30}


class FilterWheel(SimulatedDevice):
    """``move`` takes ``step_s`` per slot along the shorter way round."""

    def __init__(
        self,
        clock: Clock,
        filters: Sequence[str] = DEFAULT_FILTERS,
        *,
        step_s: float = 1.5,
        focus_offsets: Mapping[str, int] | None = None,
        name: str = "filterwheel",
    ) -> None:
        super().__init__(clock, name)
        if not filters or len(set(filters)) != len(filters):
            raise ValueError("filters must be a non-empty list of distinct names")
        self.filters = tuple(filters)
        self.step_s = step_s
        offsets = DEFAULT_FOCUS_OFFSETS if focus_offsets is None else focus_offsets
        unknown = set(offsets) - set(self.filters)
        if focus_offsets is not None and unknown:
            raise ValueError(f"focus offsets for filters not in the wheel: {sorted(unknown)}")
        self.focus_offsets: dict[str, int] = {f: int(offsets.get(f, 0)) for f in self.filters}
        self.position = 0

    @property
    def current_filter(self) -> str:
        return self.filters[self.position]

    def focus_offset(self, filter_name: str | None = None) -> int:
        """Best-focus shift of a filter (default: the one in the beam) from CLEAR [focuser steps]."""
        return self.focus_offsets.get(filter_name or self.current_filter, 0)

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
