"""Simulated observatory devices driven by the clock port: telescope, cameras, filter wheel, dome, weather.

Every simulator is plain asyncio on a ``Clock``: with a ``SimulatedClock`` a slew or an
exposure takes no real time, and every one can be told to fail (``inject_fault``,
``set_offline``) for tests. Only device-gateway uses them, through its simulator driver.
"""

from pyros_simulators.base import Aborted, DeviceFault, DeviceState, SimulatedDevice, SimulatorError
from pyros_simulators.camera import NIR, VIS, Camera, CameraConfig, ExposureRequest, synthetic_image
from pyros_simulators.dome import Dome
from pyros_simulators.filterwheel import DEFAULT_FILTERS, FilterWheel
from pyros_simulators.telescope import BelowHorizon, Telescope, TelescopeConfig
from pyros_simulators.weather import (
    CLOUD_SENSOR,
    PLC,
    QUANTITIES,
    STATION,
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
    "NIR",
    "PLC",
    "QUANTITIES",
    "STATION",
    "VIS",
    "Aborted",
    "BelowHorizon",
    "Camera",
    "CameraConfig",
    "DeviceFault",
    "DeviceState",
    "Dome",
    "ExposureRequest",
    "FilterWheel",
    "ScriptedEvent",
    "SimulatedDevice",
    "SimulatorError",
    "SourceSpec",
    "Telescope",
    "TelescopeConfig",
    "WeatherScenario",
    "WeatherSource",
    "clear_night",
    "rain_after",
    "synthetic_image",
    "weather_sources",
]
