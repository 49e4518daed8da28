"""An INDI mount: slew (EQUATORIAL_EOD_COORD, JNow), offset, park, unpark, abort."""

from __future__ import annotations

import math

from pyros_common.clock import Clock
from pyros_common.domain.sky.sites import Site
from pyros_simulators.astro import precess, radec_to_altaz

from pyros_device_gateway.domain import OffsetParams, SlewParams
from pyros_device_gateway.drivers.base import DriverCommand, DriverError, Progress, Reading, no_progress
from pyros_device_gateway.drivers.indi.client import IndiClient, IndiError
from pyros_device_gateway.drivers.indi.device import IndiDriver

COORD = "EQUATORIAL_EOD_COORD"
PARK = "TELESCOPE_PARK"


class IndiTelescopeDriver(IndiDriver):
    """A mount behind indiserver; ``indi_device`` is the INDI device name (e.g. "Telescope Simulator")."""

    kind = "telescope"
    commands = frozenset({"slew", "park", "unpark", "offset"})
    ready_property = COORD

    def __init__(
        self,
        device_id: str,
        client: IndiClient,
        *,
        indi_device: str,
        clock: Clock,
        site: Site,
        horizon_limit_deg: float = 15.0,
        timeout_s: float = 180.0,
    ) -> None:
        super().__init__(device_id, client, indi_device=indi_device, clock=clock, timeout_s=timeout_s)
        self.site = site
        self.horizon_limit_deg = horizon_limit_deg

    async def on_connected(self) -> None:
        # The mount (and the cameras snooping it) compute altitudes and hour angles from its site.
        if self._vec("GEOGRAPHIC_COORD") is not None:
            await self.client.send_numbers(
                self.indi_device,
                "GEOGRAPHIC_COORD",
                {"LAT": self.site.lat_deg, "LONG": self.site.lon_deg % 360.0, "ELEV": self.site.height_m},
            )

    async def status(self) -> Reading:
        down = self.offline()
        if down is not None:
            return down
        coord = self._need(COORD)
        try:
            ra_jnow, dec_jnow = coord.number("RA") * 15.0, coord.number("DEC")
        except IndiError as exc:
            return Reading(state="error", ok=False, error=f"malformed reply from indiserver: {exc}")
        if not (0.0 <= ra_jnow <= 360.0 and -90.0 <= dec_jnow <= 90.0):
            return Reading(
                state="error", ok=False, error=f"malformed reply from indiserver: RA/DEC {ra_jnow}/{dec_jnow}"
            )
        ra, dec = precess(ra_jnow % 360.0, dec_jnow, self.clock.now(), sign=-1.0)
        park = self._vec(PARK)
        parked = park is not None and park.values.get("PARK") is True
        moving = coord.state == "Busy" or (park is not None and park.state == "Busy")
        state = "error" if coord.state == "Alert" else "slewing" if moving else "parked" if parked else "idle"
        values: dict[str, float | str | bool] = {"indi_state": coord.state}
        focal = self.number("TELESCOPE_INFO", "TELESCOPE_FOCAL_LENGTH")
        if focal:
            values["focal_length_mm"] = focal
        return Reading(
            state=state,  # type: ignore[arg-type]
            ok=coord.state != "Alert",
            error=coord.message if coord.state == "Alert" else "",
            ra_deg=round(ra, 6),
            dec_deg=round(dec, 6),
            values=values,
        )

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        try:
            p = command.params
            if command.name == "slew" and isinstance(p, SlewParams):
                await self._slew(p.ra_deg, p.dec_deg, progress)
            elif command.name == "offset" and isinstance(p, OffsetParams):
                await self._offset(p, progress)
            elif command.name == "park":
                await self._park(True, progress)
            elif command.name == "unpark":
                await self._park(False, progress)
            else:
                raise DriverError(f"{self.device_id} does not support {command.name}")
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()

    async def _slew(self, ra_deg: float, dec_deg: float, progress: Progress) -> None:
        alt, az = radec_to_altaz(
            ra_deg, dec_deg, lat_deg=self.site.lat_deg, lon_deg=self.site.lon_deg, when=self.clock.now()
        )
        if alt < self.horizon_limit_deg:
            raise DriverError(
                f"target ra={ra_deg:.4f} dec={dec_deg:.4f} is at altitude {alt:.1f} deg (azimuth {az:.1f}), "
                f"below the horizon limit of {self.horizon_limit_deg:.1f} deg"
            )
        park = self._vec(PARK)
        if park is not None and park.values.get("PARK") is True:
            await self._park(False, progress)
        if self._vec("ON_COORD_SET") is not None:
            await self.client.send_switches(self.indi_device, "ON_COORD_SET", {"TRACK": True})
        track = self._vec("TELESCOPE_TRACK_STATE")
        if track is not None and track.values.get("TRACK_ON") is not True:  # best effort: less drift
            await self.client.send_switches(
                self.indi_device, "TELESCOPE_TRACK_STATE", {"TRACK_ON": True, "TRACK_OFF": False}
            )
        ra_jnow, dec_jnow = precess(ra_deg, dec_deg, self.clock.now())
        g0 = self._need(COORD).generation
        await self.client.send_numbers(self.indi_device, COORD, {"RA": ra_jnow / 15.0, "DEC": dec_jnow})
        await self.settle(COORD, g0, "the slew to end", progress, need_busy=True)
        await self._track(progress)

    async def _track(self, progress: Progress) -> None:
        track = self._vec("TELESCOPE_TRACK_STATE")
        if track is not None and track.values.get("TRACK_ON") is not True:
            g1 = track.generation
            await self.client.send_switches(
                self.indi_device, "TELESCOPE_TRACK_STATE", {"TRACK_ON": True, "TRACK_OFF": False}
            )
            await self.settle("TELESCOPE_TRACK_STATE", g1, "tracking to start", progress, timeout_s=10.0)

    async def _offset(self, p: OffsetParams, progress: Progress) -> None:
        now = await self.status()
        if now.ra_deg is None or now.dec_deg is None:
            raise DriverError(f"{self.indi_device} has no pointing to offset from: {now.error}")
        cos_dec = max(math.cos(math.radians(now.dec_deg)), 1e-6)
        ra = (now.ra_deg + p.dra_arcsec / 3600.0 / cos_dec) % 360.0
        dec = max(-90.0, min(90.0, now.dec_deg + p.ddec_arcsec / 3600.0))
        await self._slew(ra, dec, progress)

    async def _park(self, park: bool, progress: Progress) -> None:
        vec = self._need(PARK)
        element = "PARK" if park else "UNPARK"
        if vec.values.get(element) is True and vec.state != "Busy":
            return
        g0 = vec.generation
        await self.client.send_switches(self.indi_device, PARK, {"PARK": park, "UNPARK": not park})
        await self.settle(
            PARK, g0, "park" if park else "unpark", progress, lambda v: v.values.get(element) is True
        )

    async def abort(self) -> Reading:
        try:
            await self.client.send_switches(self.indi_device, "TELESCOPE_ABORT_MOTION", {"ABORT": True})
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()
