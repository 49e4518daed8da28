"""Simulated observatory devices driven by the clock port: mount, cameras, filter wheel, focuser, dome, PLC.

Every simulator is plain asyncio on a ``Clock``: with a ``SimulatedClock`` a slew or an
exposure takes no real time, and with a fast one a night runs fast. Every device takes
faults (``inject("disconnect" | "hang" | "refuse" | "clear")``). The cameras render FITS
images of the real sky (Tycho-2, ``catalog``) with a pointing error to solve, and the sky
takes transients for alerts (``Sky.inject_transient``). Only device-gateway uses them,
through its simulator driver.
"""

from pyros_simulators.base import (
    FAULTS,
    Aborted,
    DeviceFault,
    DeviceState,
    Fault,
    FaultState,
    SimulatedDevice,
    SimulatorError,
)
from pyros_simulators.camera import NIR, VIS, Camera, CameraConfig, Exposure, ExposureRequest
from pyros_simulators.catalog import CatalogueMissing, Stars, Tycho2, default_tycho2, faint_stars
from pyros_simulators.dome import Dome
from pyros_simulators.filterwheel import DEFAULT_FILTERS, DEFAULT_FOCUS_OFFSETS, FilterWheel
from pyros_simulators.focuser import Focuser, FocuserConfig
from pyros_simulators.sky import Injected, Sky, SkyState, Transient, point_in_error_circle
from pyros_simulators.telescope import BelowHorizon, Telescope, TelescopeConfig
from pyros_simulators.weather import (
    CLOUD_SENSOR,
    PLC,
    QUANTITIES,
    STATION,
    PlcSource,
    ScriptedEvent,
    SourceSpec,
    WeatherScenario,
    WeatherSource,
    clear_night,
    rain_after,
    weather_sources,
)

__all__ = [
    "CLOUD_SENSOR",
    "DEFAULT_FILTERS",
    "DEFAULT_FOCUS_OFFSETS",
    "FAULTS",
    "NIR",
    "PLC",
    "QUANTITIES",
    "STATION",
    "VIS",
    "Aborted",
    "BelowHorizon",
    "Camera",
    "CameraConfig",
    "CatalogueMissing",
    "DeviceFault",
    "DeviceState",
    "Dome",
    "Exposure",
    "ExposureRequest",
    "Fault",
    "FaultState",
    "FilterWheel",
    "Focuser",
    "FocuserConfig",
    "Injected",
    "PlcSource",
    "ScriptedEvent",
    "SimulatedDevice",
    "SimulatorError",
    "Sky",
    "SkyState",
    "SourceSpec",
    "Stars",
    "Telescope",
    "TelescopeConfig",
    "Transient",
    "Tycho2",
    "WeatherScenario",
    "WeatherSource",
    "clear_night",
    "default_tycho2",
    "faint_stars",
    "point_in_error_circle",
    "rain_after",
    "weather_sources",
]
