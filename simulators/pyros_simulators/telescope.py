"""A simulated alt-az telescope mount: horizon limit, finite slews, tracking, park/unpark, offsets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyros_common.clock import Clock
from pyros_common.domain.sky.sites import Site

from pyros_simulators.astro import altaz_to_radec, radec_to_altaz, separation_deg
from pyros_simulators.base import SimulatedDevice, SimulatorError


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
    unpark_s: float = 5.0  # brakes off, axes homed
    offset_settle_s: float = 1.0  # a dithering offset is mostly settling


def _unit(ra_deg: float, dec_deg: float) -> tuple[float, float, float]:
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    return math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)


def _slerp(a: tuple[float, float], b: tuple[float, float], frac: float) -> tuple[float, float]:
    """The point a fraction ``frac`` of the way from ``a`` to ``b`` along the great circle."""
    if frac <= 0.0:
        return a
    if frac >= 1.0:
        return b
    u, v = _unit(*a), _unit(*b)
    omega = math.acos(max(-1.0, min(1.0, sum(x * y for x, y in zip(u, v, strict=True)))))
    if omega < 1e-12:
        return b
    s0, s1 = math.sin((1 - frac) * omega) / math.sin(omega), math.sin(frac * omega) / math.sin(omega)
    x, y, z = (s0 * p + s1 * q for p, q in zip(u, v, strict=True))
    return math.degrees(math.atan2(y, x)) % 360.0, math.degrees(math.asin(max(-1.0, min(1.0, z))))


@dataclass
class _Slew:
    t0: float
    moving_s: float
    start: tuple[float, float]
    target: tuple[float, float]


class Telescope(SimulatedDevice):
    """Slews take distance / rate + settle on the clock; the target must be above the limit.

    Parked, the mount holds its park alt/az; a slew (from parked too: it unparks on the way)
    ends tracking the target; ``offset`` moves the tracked position by a few arcsec (dithering).
    """

    def __init__(
        self, clock: Clock, site: Site, config: TelescopeConfig | None = None, name: str = "telescope"
    ):
        super().__init__(clock, name)
        self.site = site
        self.config = config or TelescopeConfig()
        self.state = "parked"
        self.parked = True
        self.alt_deg, self.az_deg = self.config.park_alt_deg, self.config.park_az_deg
        self._ra: float | None = None  # tracked target; None while not tracking
        self._dec: float | None = None
        self.offset_arcsec = (0.0, 0.0)  # (dRA cos dec, dDec) from the last slew's target
        self._slew: _Slew | None = None

    # --- where it points ----------------------------------------------------------------

    def altaz_of(self, ra_deg: float, dec_deg: float) -> tuple[float, float]:
        """(altitude, azimuth) [deg] of an ICRS position now at this site."""
        return radec_to_altaz(
            ra_deg, dec_deg, lat_deg=self.site.lat_deg, lon_deg=self.site.lon_deg, when=self.clock.now()
        )

    @property
    def tracking(self) -> bool:
        return self._ra is not None and self._dec is not None and self._slew is None

    def _fixed_radec(self) -> tuple[float, float]:
        return altaz_to_radec(
            self.alt_deg,
            self.az_deg,
            lat_deg=self.site.lat_deg,
            lon_deg=self.site.lon_deg,
            when=self.clock.now(),
        )

    @property
    def position(self) -> tuple[float, float]:
        """Current pointing (ra, dec) ICRS [deg]: on the way during a slew, the target when tracking."""
        if self._slew is not None:
            s = self._slew
            frac = (self.clock.monotonic() - s.t0) / s.moving_s if s.moving_s > 0 else 1.0
            return _slerp(s.start, s.target, frac)
        if self._ra is not None and self._dec is not None:
            return self._ra, self._dec
        return self._fixed_radec()

    @property
    def altaz(self) -> tuple[float, float]:
        """Current (altitude, azimuth) [deg]."""
        if self._slew is not None or (self._ra is not None and self._dec is not None):
            return self.altaz_of(*self.position)
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

    async def _move(self, ra_deg: float, dec_deg: float, settle_s: float) -> None:
        """Move along the great circle at the slew rate, then settle; stops where it is on abort."""
        start = self.position
        moving = separation_deg(*start, ra_deg, dec_deg) / self.config.slew_rate_deg_s
        self._slew = _Slew(self.clock.monotonic(), moving, start, (ra_deg, dec_deg))
        self.state = "slewing"
        self.parked = False
        try:
            await self._wait(moving + settle_s)
        except BaseException:
            self._ra, self._dec = self.position  # where the abort (or a timeout) found it
            self._slew = None
            if self.state == "slewing":
                self.state = "idle"
            raise
        self._slew = None
        self._ra, self._dec = ra_deg, dec_deg
        self.state = "idle"

    async def slew(self, ra_deg: float, dec_deg: float) -> None:
        """Point at (ra, dec) ICRS [deg] and track it; state slewing, then idle."""
        self.check_target(ra_deg, dec_deg)
        self._begin()
        await self._move(ra_deg, dec_deg, self.config.settle_s)
        self.offset_arcsec = (0.0, 0.0)

    async def offset(self, dra_arcsec: float, ddec_arcsec: float) -> None:
        """Move the tracked position by (dRA cos dec, dDec) [arcsec]: dithering, small corrections."""
        if not self.tracking or self._ra is None or self._dec is None:
            raise SimulatorError(f"{self.name} must be tracking a target to offset (slew first)")
        dec = self._dec + ddec_arcsec / 3600.0
        if not -90.0 <= dec <= 90.0:
            raise SimulatorError(f"an offset of {ddec_arcsec} arcsec in Dec goes past the pole")
        cos_dec = max(1e-6, math.cos(math.radians(self._dec)))
        ra = (self._ra + dra_arcsec / 3600.0 / cos_dec) % 360.0
        self.check_target(ra, dec)
        self._begin()
        await self._move(ra, dec, self.config.offset_settle_s)
        self.offset_arcsec = (self.offset_arcsec[0] + dra_arcsec, self.offset_arcsec[1] + ddec_arcsec)

    async def park(self) -> None:
        """Go to the park position and stop tracking."""
        self._begin()
        park_ra, park_dec = self._park_radec()
        await self._move(park_ra, park_dec, self.config.settle_s)
        self._ra = self._dec = None
        self.alt_deg, self.az_deg = self.config.park_alt_deg, self.config.park_az_deg
        self.offset_arcsec = (0.0, 0.0)
        self.parked = True
        self.state = "parked"

    async def unpark(self) -> None:
        """Release the brakes at the park position (``unpark_s``); the mount is then idle, not tracking."""
        self._begin()
        if not self.parked:
            await self._wait(0.0)
            return
        self.state = "busy"
        try:
            await self._wait(self.config.unpark_s)
        except BaseException:
            self.state = "parked"
            raise
        self.parked = False
        self.state = "idle"

    def _park_radec(self) -> tuple[float, float]:
        return altaz_to_radec(
            self.config.park_alt_deg,
            self.config.park_az_deg,
            lat_deg=self.site.lat_deg,
            lon_deg=self.site.lon_deg,
            when=self.clock.now(),
        )

    def clear_faults(self) -> None:
        super().clear_faults()
        if self.parked and self.state == "idle":
            self.state = "parked"
