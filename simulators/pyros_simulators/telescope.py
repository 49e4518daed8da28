"""A simulated alt-az telescope mount: horizon limit, slew time from distance, park, abort."""

from __future__ import annotations

from dataclasses import dataclass

from pyros_common.clock import Clock
from pyros_common.domain.sky.sites import Site

from pyros_simulators.astro import altaz_to_radec, radec_to_altaz, separation_deg
from pyros_simulators.base import Aborted, SimulatedDevice, SimulatorError


class BelowHorizon(SimulatorError):
    """The target is below the mount's altitude limit."""


@dataclass(frozen=True)
class TelescopeConfig:
    """Mount limits and speeds."""

    horizon_limit_deg: float = 15.0
    slew_rate_deg_s: float = 3.0
    settle_s: float = 2.0
    park_alt_deg: float = 90.0
    park_az_deg: float = 0.0


class Telescope(SimulatedDevice):
    """Slews take distance / rate + settle on the clock; the target must be above the limit."""

    def __init__(
        self, clock: Clock, site: Site, config: TelescopeConfig | None = None, name: str = "telescope"
    ):
        super().__init__(clock, name)
        self.site = site
        self.config = config or TelescopeConfig()
        self.state = "parked"
        self.alt_deg, self.az_deg = self.config.park_alt_deg, self.config.park_az_deg
        self._ra: float | None = None  # tracked target; None while parked
        self._dec: float | None = None

    # --- where it points ----------------------------------------------------------------

    def altaz_of(self, ra_deg: float, dec_deg: float) -> tuple[float, float]:
        """(altitude, azimuth) [deg] of an ICRS position now at this site."""
        return radec_to_altaz(
            ra_deg, dec_deg, lat_deg=self.site.lat_deg, lon_deg=self.site.lon_deg, when=self.clock.now()
        )

    @property
    def position(self) -> tuple[float, float]:
        """Current pointing (ra, dec) ICRS [deg]; a tracking mount follows the sky, a parked one does not."""
        if self._ra is not None and self._dec is not None:
            return self._ra, self._dec
        return altaz_to_radec(
            self.alt_deg,
            self.az_deg,
            lat_deg=self.site.lat_deg,
            lon_deg=self.site.lon_deg,
            when=self.clock.now(),
        )

    @property
    def altaz(self) -> tuple[float, float]:
        """Current (altitude, azimuth) [deg]."""
        if self._ra is not None and self._dec is not None:
            return self.altaz_of(self._ra, self._dec)
        return self.alt_deg, self.az_deg

    def slew_time_s(self, ra_deg: float, dec_deg: float) -> float:
        """How long a slew from the current position to (ra, dec) takes [s]."""
        ra0, dec0 = self.position
        return separation_deg(ra0, dec0, ra_deg, dec_deg) / self.config.slew_rate_deg_s + self.config.settle_s

    # --- commands -----------------------------------------------------------------------

    def check_target(self, ra_deg: float, dec_deg: float) -> None:
        """Raise BelowHorizon (or SimulatorError for nonsense) if the mount cannot go there now."""
        if not (0.0 <= ra_deg < 360.0 and -90.0 <= dec_deg <= 90.0):
            raise SimulatorError(f"ra_deg={ra_deg}, dec_deg={dec_deg} outside [0, 360) x [-90, 90]")
        alt, az = self.altaz_of(ra_deg, dec_deg)
        limit = self.config.horizon_limit_deg
        if alt < limit:
            raise BelowHorizon(
                f"target ra={ra_deg:.4f} dec={dec_deg:.4f} is at altitude {alt:.1f} deg "
                f"(azimuth {az:.1f}), below the horizon limit of {limit:.1f} deg"
            )

    async def slew(self, ra_deg: float, dec_deg: float) -> None:
        """Point at (ra, dec) ICRS [deg] and track it; state slewing, then idle."""
        self.check_target(ra_deg, dec_deg)
        self._begin()
        start_ra, start_dec = self.position
        duration = self.slew_time_s(ra_deg, dec_deg)
        self.state = "slewing"
        t0 = self.clock.monotonic()
        try:
            await self._wait(duration)
        except Aborted:
            # Stop roughly on the great circle where the abort found it.
            frac = min(1.0, (self.clock.monotonic() - t0) / duration) if duration > 0 else 1.0
            self._ra = (start_ra + frac * (((ra_deg - start_ra + 180.0) % 360.0) - 180.0)) % 360.0
            self._dec = start_dec + frac * (dec_deg - start_dec)
            self.state = "idle"
            raise
        self._ra, self._dec = ra_deg, dec_deg
        self.state = "idle"

    async def park(self) -> None:
        """Go to the park position and stop tracking."""
        self._begin()
        park_ra, park_dec = altaz_to_radec(
            self.config.park_alt_deg,
            self.config.park_az_deg,
            lat_deg=self.site.lat_deg,
            lon_deg=self.site.lon_deg,
            when=self.clock.now(),
        )
        duration = self.slew_time_s(park_ra, park_dec)
        self.state = "slewing"
        try:
            await self._wait(duration)
        except Aborted:
            self.state = "idle"
            raise
        self._ra = self._dec = None
        self.alt_deg, self.az_deg = self.config.park_alt_deg, self.config.park_az_deg
        self.state = "parked"
