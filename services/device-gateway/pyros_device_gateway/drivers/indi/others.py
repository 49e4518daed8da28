"""INDI filter wheel (FILTER_SLOT, 1-based), focuser (ABS_FOCUS_POSITION) and dome (shutter, azimuth)."""

from __future__ import annotations

from pyros_device_gateway.domain import DomeParams, FilterParams, FocusParams
from pyros_device_gateway.drivers.base import DriverCommand, DriverError, Progress, Reading, no_progress
from pyros_device_gateway.drivers.indi.client import IndiError
from pyros_device_gateway.drivers.indi.device import IndiDriver

SLOT, NAMES = "FILTER_SLOT", "FILTER_NAME"
FOCUS = "ABS_FOCUS_POSITION"
SHUTTER, AZIMUTH, AUTOSYNC = "DOME_SHUTTER", "ABS_DOME_POSITION", "DOME_AUTOSYNC"


def _state(*states: str) -> tuple[str, bool]:
    """Our state and health from the INDI states of the vectors that move."""
    if "Alert" in states:
        return "error", False
    return ("busy" if "Busy" in states else "idle"), True


class IndiFilterWheelDriver(IndiDriver):
    """Our slot index is 0-based (as the simulators'), INDI's FILTER_SLOT is 1-based."""

    kind = "filterwheel"
    commands = frozenset({"set_filter"})
    ready_property = SLOT

    def filters(self) -> list[str]:
        names = self._vec(NAMES)
        if names is None:
            return []
        keyed = sorted(
            (int(k.rsplit("_", 1)[-1]), str(v))
            for k, v in names.values.items()
            if k.rsplit("_", 1)[-1].isdigit()
        )
        return [v for _, v in keyed]

    async def status(self) -> Reading:
        down = self.offline()
        if down is not None:
            return down
        slot = self._need(SLOT)
        state, ok = _state(slot.state)
        values: dict[str, float | str | bool] = {"filters": ",".join(self.filters())}
        value = slot.values.get("FILTER_SLOT_VALUE")
        if isinstance(value, float):
            position = round(value) - 1
            values["position"] = position
            names = self.filters()
            if 0 <= position < len(names):
                values["filter"] = names[position]
        return Reading(state=state, ok=ok, error=slot.message if not ok else "", values=values)  # type: ignore[arg-type]

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        if command.name != "set_filter" or not isinstance(p, FilterParams):
            raise DriverError(f"{self.device_id} does not support {command.name}")
        names = self.filters()
        if p.filter is not None:
            matches = [i for i, n in enumerate(names) if n == p.filter] or [
                i for i, n in enumerate(names) if n.lower() == p.filter.lower()
            ]
            if not matches:
                raise DriverError(f"no filter {p.filter!r} in {self.indi_device}; it holds {names}")
            position = matches[0]
        else:
            assert p.position is not None
            position = p.position
            if names and position >= len(names):
                raise DriverError(f"slot {position} outside [0, {len(names) - 1}] of {self.indi_device}")
        target = float(position + 1)
        try:
            slot = self._need(SLOT)
            if slot.values.get("FILTER_SLOT_VALUE") != target or slot.state != "Ok":
                g0 = slot.generation
                await self.client.send_numbers(self.indi_device, SLOT, {"FILTER_SLOT_VALUE": target})
                await self.settle(
                    SLOT,
                    g0,
                    "the filter wheel to turn",
                    progress,
                    lambda v: v.values.get("FILTER_SLOT_VALUE") == target,
                )
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()


class IndiFocuserDriver(IndiDriver):
    kind = "focuser"
    commands = frozenset({"set_focus"})
    ready_property = FOCUS

    async def status(self) -> Reading:
        down = self.offline()
        if down is not None:
            return down
        vec = self._need(FOCUS)
        state, ok = _state(vec.state)
        values: dict[str, float | str | bool] = {}
        position = vec.values.get("FOCUS_ABSOLUTE_POSITION")
        if isinstance(position, float):
            values["position"] = round(position)
        top = self.number("FOCUS_MAX", "FOCUS_MAX_VALUE")
        if top is not None:
            values["max_position"] = int(top)
        temperature = self.number("FOCUS_TEMPERATURE", "TEMPERATURE")
        return Reading(
            state=state,  # type: ignore[arg-type]
            ok=ok,
            error=vec.message if not ok else "",
            temperature_c=temperature,
            values=values,
        )

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        if command.name != "set_focus" or not isinstance(p, FocusParams):
            raise DriverError(f"{self.device_id} does not support {command.name}")
        top = self.number("FOCUS_MAX", "FOCUS_MAX_VALUE")
        if top is not None and p.position > top:
            raise DriverError(
                f"focus position {p.position} beyond the maximum {int(top)} of {self.indi_device}"
            )
        target = float(p.position)
        try:
            vec = self._need(FOCUS)
            if (
                abs(float(vec.values.get("FOCUS_ABSOLUTE_POSITION", -1.0)) - target) >= 0.5
                or vec.state == "Busy"
            ):
                g0 = vec.generation
                await self.client.send_numbers(self.indi_device, FOCUS, {"FOCUS_ABSOLUTE_POSITION": target})
                await self.settle(
                    FOCUS,
                    g0,
                    "the focuser to move",
                    progress,
                    lambda v: abs(float(v.values.get("FOCUS_ABSOLUTE_POSITION", -1.0)) - target) < 0.5,
                )
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()

    async def abort(self) -> Reading:
        try:
            await self.client.send_switches(self.indi_device, "FOCUS_ABORT_MOTION", {"ABORT": True})
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()


class IndiDomeDriver(IndiDriver):
    kind = "dome"
    commands = frozenset({"dome"})
    ready_property = SHUTTER

    async def status(self) -> Reading:
        down = self.offline()
        if down is not None:
            return down
        shutter = self._need(SHUTTER)
        az = self._vec(AZIMUTH)
        state, ok = _state(shutter.state, az.state if az is not None else "Idle")
        park = self._vec("DOME_PARK")
        if state == "idle" and park is not None and park.values.get("PARK") is True:
            state = "parked"
        values: dict[str, float | str | bool] = {
            "shutter": "open" if shutter.values.get("SHUTTER_OPEN") is True else "closed"
        }
        azimuth = self.number(AZIMUTH, "DOME_ABSOLUTE_POSITION")
        if azimuth is not None:
            values["azimuth_deg"] = round(azimuth, 3)
        sync = self._vec(AUTOSYNC)
        if sync is not None:
            values["slaved"] = sync.values.get("DOME_AUTOSYNC_ENABLE") is True
        errors = [v.message for v in (shutter, az) if v is not None and v.state == "Alert" and v.message]
        return Reading(state=state, ok=ok, error="; ".join(errors), values=values)  # type: ignore[arg-type]

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        if command.name != "dome" or not isinstance(p, DomeParams):
            raise DriverError(f"{self.device_id} does not support {command.name}")
        try:
            if p.action in ("open", "close"):
                element = "SHUTTER_OPEN" if p.action == "open" else "SHUTTER_CLOSE"
                vec = self._need(SHUTTER)
                if vec.values.get(element) is not True or vec.state != "Ok":
                    g0 = vec.generation
                    await self.client.send_switches(
                        self.indi_device,
                        SHUTTER,
                        {"SHUTTER_OPEN": p.action == "open", "SHUTTER_CLOSE": p.action == "close"},
                    )
                    await self.settle(
                        SHUTTER,
                        g0,
                        f"the shutter to {p.action}",
                        progress,
                        lambda v: v.values.get(element) is True,
                    )
            elif p.action == "goto":
                assert p.azimuth_deg is not None
                target = p.azimuth_deg
                vec = self._need(AZIMUTH)
                g0 = vec.generation
                await self.client.send_numbers(self.indi_device, AZIMUTH, {"DOME_ABSOLUTE_POSITION": target})
                await self.settle(AZIMUTH, g0, "the dome to turn", progress)
            else:
                vec = self._need(AUTOSYNC)
                on = p.action == "follow"
                g0 = vec.generation
                await self.client.send_switches(
                    self.indi_device, AUTOSYNC, {"DOME_AUTOSYNC_ENABLE": on, "DOME_AUTOSYNC_DISABLE": not on}
                )
                await self.settle(AUTOSYNC, g0, f"the dome to {p.action}", progress)
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()

    async def abort(self) -> Reading:
        try:
            await self.client.send_switches(self.indi_device, "DOME_ABORT_MOTION", {"ABORT": True})
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()
