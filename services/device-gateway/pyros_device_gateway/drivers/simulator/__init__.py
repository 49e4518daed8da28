"""The simulator driver: every device of the observatory simulated on the clock port."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyros_common.clock import Clock
from pyros_common.domain.sky.sites import Site
from pyros_simulators import (
    NIR,
    VIS,
    Camera,
    CameraConfig,
    Dome,
    FilterWheel,
    Telescope,
    TelescopeConfig,
    WeatherScenario,
    WeatherSource,
    weather_sources,
)

from pyros_device_gateway.drivers.base import DeviceDriver
from pyros_device_gateway.drivers.simulator.drivers import (
    CameraDriver,
    DomeDriver,
    FilterWheelDriver,
    PlcDriver,
    SimulatorDriver,
    TelescopeDriver,
    WeatherDriver,
)

__all__ = [
    "CameraDriver",
    "DomeDriver",
    "FilterWheelDriver",
    "PlcDriver",
    "SimulatedObservatory",
    "SimulatorDriver",
    "TelescopeDriver",
    "WeatherDriver",
]


@dataclass
class SimulatedObservatory:
    """The simulators of one telescope, and a driver for each (tests reach the simulators here)."""

    telescope: Telescope
    cam_vis: Camera
    cam_nir: Camera
    filterwheel: FilterWheel
    dome: Dome
    weather: list[WeatherSource] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        clock: Clock,
        site: Site,
        *,
        seed: int = 0,
        telescope: TelescopeConfig | None = None,
        vis: CameraConfig = VIS,
        nir: CameraConfig = NIR,
    ) -> SimulatedObservatory:
        """Every simulator with its defaults; the weather starts now, seeded."""
        return cls(
            telescope=Telescope(clock, site, telescope),
            cam_vis=Camera(clock, vis, "cam-vis"),
            cam_nir=Camera(clock, nir, "cam-nir"),
            filterwheel=FilterWheel(clock),
            dome=Dome(clock),
            weather=weather_sources(clock, WeatherScenario(start=clock.now(), seed=seed)),
        )

    def drivers(self) -> dict[str, DeviceDriver]:
        """device id -> driver."""
        out: dict[str, DeviceDriver] = {
            "telescope": TelescopeDriver("telescope", self.telescope, self.dome),
            "cam-vis": CameraDriver("cam-vis", self.cam_vis, self.filterwheel),
            "cam-nir": CameraDriver("cam-nir", self.cam_nir),
            "filterwheel": FilterWheelDriver("filterwheel", self.filterwheel),
            "dome": DomeDriver("dome", self.dome),
        }
        for src in self.weather:
            out[src.name] = (PlcDriver if src.spec.kind == "plc" else WeatherDriver)(src.name, src)
        return out
