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
    FaultState,
    FilterWheel,
    Focuser,
    FocuserConfig,
    PlcSource,
    SimulatedDevice,
    Sky,
    Telescope,
    TelescopeConfig,
    Tycho2,
    WeatherScenario,
    WeatherSource,
    weather_sources,
)

from pyros_device_gateway.drivers.base import DeviceDriver
from pyros_device_gateway.drivers.simulator.drivers import (
    CameraDriver,
    DomeDriver,
    FilterWheelDriver,
    FocuserDriver,
    PlcDriver,
    SimulatorDriver,
    TelescopeDriver,
    WeatherDriver,
)

__all__ = [
    "CameraDriver",
    "DomeDriver",
    "FilterWheelDriver",
    "FocuserDriver",
    "PlcDriver",
    "SimulatedObservatory",
    "SimulatorDriver",
    "TelescopeDriver",
    "UnknownSimulator",
    "WeatherDriver",
]


class UnknownSimulator(KeyError):
    """No simulated device of that id."""


@dataclass
class SimulatedObservatory:
    """The simulators of one telescope, and a driver for each (tests reach the simulators here)."""

    telescope: Telescope
    cam_vis: Camera
    cam_nir: Camera
    filterwheel: FilterWheel
    dome: Dome
    weather: list[WeatherSource] = field(default_factory=list)
    focuser: Focuser | None = None
    sky: Sky | None = None

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
        focuser: FocuserConfig | None = None,
        catalogue: Tycho2 | None = None,
    ) -> SimulatedObservatory:
        """Every simulator with its defaults, cameras seeing one sky through the mount; weather seeded."""
        sky = Sky(site=site, catalogue=catalogue, seed=seed)
        mount = Telescope(clock, site, telescope)
        wheel = FilterWheel(clock)
        foc = Focuser(clock, focuser)
        return cls(
            telescope=mount,
            cam_vis=Camera(clock, vis, "cam-vis", sky=sky, telescope=mount, wheel=wheel, focuser=foc),
            cam_nir=Camera(clock, nir, "cam-nir", sky=sky, telescope=mount, focuser=foc),
            filterwheel=wheel,
            dome=Dome(clock),
            weather=weather_sources(clock, WeatherScenario(start=clock.now(), seed=seed)),
            focuser=foc,
            sky=sky,
        )

    def __post_init__(self) -> None:
        for src in self.weather:
            if isinstance(src, PlcSource) and not src.outlets:
                src.outlets = dict.fromkeys(self._powered(), True)

    def _powered(self) -> dict[str, SimulatedDevice]:
        """Devices the PLC powers (everything but the weather sources)."""
        out: dict[str, SimulatedDevice] = {
            "telescope": self.telescope,
            "cam-vis": self.cam_vis,
            "cam-nir": self.cam_nir,
            "filterwheel": self.filterwheel,
            "dome": self.dome,
        }
        if self.focuser is not None:
            out["focuser"] = self.focuser
        return out

    def devices(self) -> dict[str, SimulatedDevice]:
        """device id -> simulator (the ids of ``drivers``)."""
        out = self._powered()
        for src in self.weather:
            out[src.name] = src
        return out

    def device(self, device_id: str) -> SimulatedDevice:
        try:
            return self.devices()[device_id]
        except KeyError:
            raise UnknownSimulator(
                f"no simulated device {device_id!r}; known: {sorted(self.devices())}"
            ) from None

    def inject(self, device_id: str, fault: str, reason: str = "") -> FaultState:
        """Inject ``disconnect`` / ``hang`` / ``refuse`` / ``clear`` into one device."""
        return self.device(device_id).inject(fault, reason)

    @property
    def plc(self) -> PlcSource | None:
        return next((s for s in self.weather if isinstance(s, PlcSource)), None)

    def set_power(self, device_id: str, on: bool) -> None:
        """Switch a device's outlet on the PLC: off, the device is offline (no power)."""
        dev = self._powered().get(device_id)
        if dev is None:
            raise UnknownSimulator(f"no powered device {device_id!r}; known: {sorted(self._powered())}")
        if self.plc is not None:
            self.plc.set_power(device_id, on)
        dev.set_offline(not on, "no power" if not on else "")

    def drivers(self) -> dict[str, DeviceDriver]:
        """device id -> driver."""
        out: dict[str, DeviceDriver] = {
            "telescope": TelescopeDriver("telescope", self.telescope, self.dome),
            "cam-vis": CameraDriver("cam-vis", self.cam_vis, self.filterwheel),
            "cam-nir": CameraDriver("cam-nir", self.cam_nir),
            "filterwheel": FilterWheelDriver("filterwheel", self.filterwheel),
            "dome": DomeDriver("dome", self.dome),
        }
        if self.focuser is not None:
            out["focuser"] = FocuserDriver("focuser", self.focuser)
        for src in self.weather:
            out[src.name] = (PlcDriver if src.spec.kind == "plc" else WeatherDriver)(src.name, src)
        return out
