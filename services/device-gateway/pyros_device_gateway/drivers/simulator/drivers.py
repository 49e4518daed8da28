"""Drivers over pyros_simulators: the same interface as real hardware, time on the clock port.

A simulated device that was disconnected (``inject("disconnect")``) answers neither status
nor commands: both raise DriverError, so the gateway reports it offline, as a real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar

from pyros_simulators import (
    Camera,
    Dome,
    ExposureRequest,
    FilterWheel,
    Focuser,
    PlcSource,
    SimulatedDevice,
    SimulatorError,
    Telescope,
    WeatherSource,
)

from pyros_device_gateway.domain import (
    CoolerParams,
    DomeParams,
    ExposeParams,
    FilterParams,
    FocusParams,
    OffsetParams,
    SlewParams,
)
from pyros_device_gateway.drivers.base import (
    DeviceDriver,
    DeviceKind,
    DriverCommand,
    DriverError,
    Progress,
    Reading,
    no_progress,
)

T = TypeVar("T")
Values = dict[str, float | str | bool]


async def _run(driver: SimulatorDriver, work: Coroutine[Any, Any, T], progress: Progress) -> T:
    """Run ``work``; once it has started (state set, nothing awaited yet) report progress."""
    task = asyncio.ensure_future(work)
    await asyncio.sleep(0)  # the task's first step runs before we resume: it has validated and moved
    try:
        if not task.done():
            await progress(await driver.status())
        return await task
    except SimulatorError as exc:
        raise DriverError(str(exc)) from exc
    finally:
        if not task.done():  # we were cancelled: the device must not keep moving on its own
            task.cancel()


class SimulatorDriver(DeviceDriver):
    """Common part: connect fails while disconnected, close is a no-op, abort stops the simulator."""

    driver = "simulator"

    def __init__(self, device_id: str, device: SimulatedDevice) -> None:
        super().__init__(device_id)
        self.device = device

    async def connect(self) -> None:
        if self.device.offline:
            raise DriverError(self._offline())

    async def close(self) -> None:
        return None

    async def abort(self) -> Reading:
        try:
            await self.device.abort()
        except SimulatorError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()

    def _offline(self) -> str:
        why = self.device.offline_reason
        return f"{self.device_id} is offline" + (f" ({why})" if why else "")

    def _base(self) -> Reading:
        """State and error; DriverError when the device does not answer (disconnected)."""
        d = self.device
        if d.offline:
            raise DriverError(self._offline())
        return Reading(state=d.state, ok=d.state != "error", error=d.error)

    async def _connect_command(self) -> Reading:
        await self.connect()
        return await self.status()

    def _unsupported(self, command: DriverCommand) -> DriverError:
        return DriverError(f"{self.device_id} does not support {command.name}")


class TelescopeDriver(SimulatorDriver):
    kind = "telescope"
    commands = frozenset({"slew", "park", "unpark", "offset"})

    def __init__(self, device_id: str, telescope: Telescope, dome: Dome | None = None) -> None:
        super().__init__(device_id, telescope)
        self.telescope = telescope
        self.dome = dome

    async def status(self) -> Reading:
        base = self._base()
        tel = self.telescope
        ra, dec = tel.position
        alt, az = tel.altaz
        values: Values = {"alt_deg": round(alt, 4), "az_deg": round(az, 4)}
        values["tracking"] = tel.tracking
        values["parked"] = tel.parked
        values["offset_ra_arcsec"] = round(tel.offset_arcsec[0], 3)
        values["offset_dec_arcsec"] = round(tel.offset_arcsec[1], 3)
        return Reading(
            state=base.state,
            ok=base.ok,
            error=base.error,
            ra_deg=round(ra, 6),
            dec_deg=round(dec, 6),
            values=values,
        )

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        if command.name == "slew" and isinstance(p, SlewParams):
            await _run(self, self.telescope.slew(p.ra_deg, p.dec_deg), progress)
            await self._follow()
        elif command.name == "offset" and isinstance(p, OffsetParams):
            await _run(self, self.telescope.offset(p.dra_arcsec, p.ddec_arcsec), progress)
        elif command.name == "park":
            await _run(self, self.telescope.park(), progress)
        elif command.name == "unpark":
            await _run(self, self.telescope.unpark(), progress)
        elif command.name == "connect":
            return await self._connect_command()
        else:
            raise self._unsupported(command)
        return await self.status()

    async def _follow(self) -> None:
        if self.dome is not None and self.dome.slaved:
            # the dome follows the mount: the slit goes where the tube points
            await _run(self, self.dome.goto(round(self.telescope.altaz[1], 3) % 360.0), no_progress)


class CameraDriver(SimulatorDriver):
    kind = "camera"
    commands = frozenset({"expose", "cooler"})

    def __init__(self, device_id: str, camera: Camera, wheel: FilterWheel | None = None) -> None:
        super().__init__(device_id, camera)
        self.camera = camera
        self.wheel = wheel

    async def status(self) -> Reading:
        base = self._base()
        cam = self.camera
        values: Values = {"detector": cam.config.detector, "frames": cam.frames}
        values["setpoint_c"] = cam.setpoint_c
        values["at_setpoint"] = cam.at_setpoint
        return Reading(
            state=base.state,
            ok=base.ok,
            error=base.error,
            temperature_c=round(cam.temperature_c, 3),
            values=values,
        )

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        if command.name == "cooler" and isinstance(p, CoolerParams):
            await _run(self, self.camera.set_cooler(p.setpoint_c), no_progress)
            return await self.status()
        if command.name == "connect":
            return await self._connect_command()
        if command.name != "expose" or not isinstance(p, ExposeParams):
            raise self._unsupported(command)
        if command.image_path is None:
            raise DriverError("expose needs an image path from the gateway")
        default_filter = self.wheel.current_filter if self.wheel is not None else "CLEAR"
        req = ExposureRequest(
            exposure_s=p.exposure_s,
            path=command.image_path,
            filter=p.filter or default_filter,
            object=p.object,
            ra_deg=p.ra_deg,
            dec_deg=p.dec_deg,
            image_type=p.image_type,
            request_id=p.request_id,
            sequence_id=p.sequence_id,
            album_id=p.album_id,
            plan_id=p.plan_id,
            frame=p.frame,
            extra_headers={"CMDID": str(command.command_id)},
        )
        path = await _run(self, self.camera.expose(req), progress)
        status = await self.status()
        return Reading(
            state=status.state,
            ok=status.ok,
            error=status.error,
            temperature_c=status.temperature_c,
            values=status.values,
            image=path,
        )


class FilterWheelDriver(SimulatorDriver):
    kind = "filterwheel"
    commands = frozenset({"set_filter"})

    def __init__(self, device_id: str, wheel: FilterWheel) -> None:
        super().__init__(device_id, wheel)
        self.wheel = wheel

    async def status(self) -> Reading:
        base = self._base()
        values: Values = {"filter": self.wheel.current_filter}
        values["position"] = self.wheel.position
        values["filters"] = ",".join(self.wheel.filters)
        values["focus_offset"] = self.wheel.focus_offset()  # the observer refocuses by this [steps]
        return Reading(state=base.state, ok=base.ok, error=base.error, values=values)

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        if command.name == "connect":
            return await self._connect_command()
        if command.name != "set_filter" or not isinstance(p, FilterParams):
            raise self._unsupported(command)
        target: str | int = p.filter if p.filter is not None else (p.position or 0)
        await _run(self, self.wheel.move(target), progress)
        return await self.status()


class FocuserDriver(SimulatorDriver):
    kind = "focuser"
    commands = frozenset({"set_focus"})

    def __init__(self, device_id: str, focuser: Focuser) -> None:
        super().__init__(device_id, focuser)
        self.focuser = focuser

    async def status(self) -> Reading:
        base = self._base()
        values: Values = {"position": self.focuser.position}
        values["max_position"] = self.focuser.config.max_position
        return Reading(state=base.state, ok=base.ok, error=base.error, values=values)

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        if command.name == "connect":
            return await self._connect_command()
        if command.name != "set_focus" or not isinstance(p, FocusParams):
            raise self._unsupported(command)
        await _run(self, self.focuser.move(p.position), progress)
        return await self.status()


class DomeDriver(SimulatorDriver):
    kind = "dome"
    commands = frozenset({"dome"})

    def __init__(self, device_id: str, dome: Dome) -> None:
        super().__init__(device_id, dome)
        self.dome = dome

    async def status(self) -> Reading:
        base = self._base()
        values: Values = {"shutter": self.dome.shutter}
        values["azimuth_deg"] = round(self.dome.azimuth_deg, 3)
        values["slaved"] = self.dome.slaved
        return Reading(state=base.state, ok=base.ok, error=base.error, values=values)

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        if command.name == "connect":
            return await self._connect_command()
        if command.name != "dome" or not isinstance(p, DomeParams):
            raise self._unsupported(command)
        if p.action == "open":
            await _run(self, self.dome.open(), progress)
        elif p.action == "close":
            await _run(self, self.dome.close(), progress)
        elif p.action == "goto" and p.azimuth_deg is not None:
            await _run(self, self.dome.goto(p.azimuth_deg), progress)
        else:
            self.dome.slaved = p.action == "follow"
        return await self.status()


class WeatherDriver(SimulatorDriver):
    """A weather source: status only, read from the simulated sensors."""

    kind: ClassVar[DeviceKind] = "weather"
    commands = frozenset()

    def __init__(self, device_id: str, source: WeatherSource) -> None:
        super().__init__(device_id, source)
        self.source = source

    async def status(self) -> Reading:
        self._base()
        try:
            values: Values = dict(self.source.read())
        except SimulatorError as exc:
            return Reading(state="error", ok=False, error=str(exc))
        values["source"] = self.source.name
        return Reading(state="idle", values=values)

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        if command.name == "connect":
            return await self._connect_command()
        raise self._unsupported(command)


class PlcDriver(WeatherDriver):
    """The enclosure PLC: its own wind and rain sensors, mains, UPS and outlets."""

    kind = "plc"

    def __init__(self, device_id: str, source: WeatherSource) -> None:
        super().__init__(device_id, source)
        self.plc = source if isinstance(source, PlcSource) else None
