"""An INDI telescope (mount) driven through indiserver: connect, slew (EQUATORIAL_EOD_COORD), park, abort."""

from __future__ import annotations

from pyros_common.clock import Clock
from pyros_common.domain.sky.sites import Site
from pyros_simulators.astro import precess, radec_to_altaz

from pyros_device_gateway.domain import SlewParams
from pyros_device_gateway.drivers.base import (
    DeviceDriver,
    DriverCommand,
    DriverError,
    Progress,
    Reading,
    no_progress,
)
from pyros_device_gateway.drivers.indi.client import IndiClient, IndiError, IndiVector

COORD = "EQUATORIAL_EOD_COORD"


class IndiTelescopeDriver(DeviceDriver):
    """A mount behind indiserver; ``indi_device`` is the INDI device name (e.g. "Telescope Simulator")."""

    kind = "telescope"
    driver = "indi"
    commands = frozenset({"slew", "park"})

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
        super().__init__(device_id)
        self.client = client
        self.indi_device = indi_device
        self.clock = clock
        self.site = site
        self.horizon_limit_deg = horizon_limit_deg
        self.timeout_s = timeout_s

    def _vec(self, name: str) -> IndiVector | None:
        return self.client.vector(self.indi_device, name)

    def _need(self, name: str) -> IndiVector:
        vec = self._vec(name)
        if vec is None:
            raise DriverError(f"{self.indi_device} has no property {name} (not connected, or not a mount)")
        return vec

    async def connect(self) -> None:
        try:
            if not self.client.connected:
                await self.client.connect(self.indi_device)
            await self.client.wait_for(
                lambda: self._vec("CONNECTION") is not None, 10.0, f"{self.indi_device} CONNECTION"
            )
            conn = self._need("CONNECTION")
            if not conn.values.get("CONNECT"):
                await self.client.send_switches(
                    self.indi_device, "CONNECTION", {"CONNECT": True, "DISCONNECT": False}
                )
            await self.client.wait_for(
                lambda: self._vec(COORD) is not None and bool(self._need("CONNECTION").values.get("CONNECT")),
                self.timeout_s,
                f"{self.indi_device} to connect",
            )
        except IndiError as exc:
            raise DriverError(str(exc)) from exc

    async def close(self) -> None:
        await self.client.close()

    async def status(self) -> Reading:
        if not self.client.connected:
            return Reading(
                state="offline", ok=False, error=self.client.error or "not connected to indiserver"
            )
        conn = self._vec("CONNECTION")
        coord = self._vec(COORD)
        if conn is None or coord is None or not conn.values.get("CONNECT"):
            return Reading(state="offline", ok=False, error=f"{self.indi_device} is not connected")
        try:
            ra_jnow, dec_jnow = coord.number("RA") * 15.0, coord.number("DEC")
        except IndiError as exc:
            return Reading(state="error", ok=False, error=f"malformed reply from indiserver: {exc}")
        if not (0.0 <= ra_jnow <= 360.0 and -90.0 <= dec_jnow <= 90.0):
            return Reading(
                state="error", ok=False, error=f"malformed reply from indiserver: RA/DEC {ra_jnow}/{dec_jnow}"
            )
        ra, dec = precess(ra_jnow % 360.0, dec_jnow, self.clock.now(), sign=-1.0)
        park = self._vec("TELESCOPE_PARK")
        parked = park is not None and park.values.get("PARK") is True
        state = {"Busy": "slewing", "Alert": "error"}.get(coord.state, "parked" if parked else "idle")
        return Reading(
            state=state,  # type: ignore[arg-type]
            ok=coord.state != "Alert",
            error=coord.message if coord.state == "Alert" else "",
            ra_deg=round(ra, 6),
            dec_deg=round(dec, 6),
            values={"indi_state": coord.state},
        )

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        try:
            if command.name == "slew" and isinstance(command.params, SlewParams):
                await self._slew(command.params, progress)
            elif command.name == "park":
                await self._park(progress)
            else:
                raise DriverError(f"{self.device_id} does not support {command.name}")
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()

    async def _await_motion(self, vec_name: str, generation: int, done: str, progress: Progress) -> None:
        """Wait for Busy then Ok/Idle on ``vec_name`` (or Alert, which fails)."""

        def started() -> bool:
            vec = self._need(vec_name)
            return vec.busy_generation > generation or (vec.generation > generation and vec.state == "Alert")

        def settled() -> bool:
            vec = self._need(vec_name)
            return started() and vec.state in ("Ok", "Idle", "Alert")

        await self.client.wait_for(started, self.timeout_s, f"{vec_name} to start")
        if not settled():
            await progress(await self.status())
            await self.client.wait_for(settled, self.timeout_s, done)
        vec = self._need(vec_name)
        if vec.state == "Alert":
            raise DriverError(f"{self.indi_device} {vec_name} failed: {vec.message or 'Alert'}")

    async def _slew(self, p: SlewParams, progress: Progress) -> None:
        alt, az = radec_to_altaz(
            p.ra_deg, p.dec_deg, lat_deg=self.site.lat_deg, lon_deg=self.site.lon_deg, when=self.clock.now()
        )
        if alt < self.horizon_limit_deg:
            raise DriverError(
                f"target ra={p.ra_deg:.4f} dec={p.dec_deg:.4f} is at altitude {alt:.1f} deg (azimuth {az:.1f}), "
                f"below the horizon limit of {self.horizon_limit_deg:.1f} deg"
            )
        park = self._vec("TELESCOPE_PARK")
        if park is not None and park.values.get("PARK") is True:
            g = park.generation
            await self.client.send_switches(
                self.indi_device, "TELESCOPE_PARK", {"PARK": False, "UNPARK": True}
            )
            await self.client.wait_for(
                lambda: (
                    self._need("TELESCOPE_PARK").generation > g
                    and self._need("TELESCOPE_PARK").values.get("UNPARK") is True
                ),
                30.0,
                "unpark",
            )
        if self._vec("ON_COORD_SET") is not None:
            await self.client.send_switches(self.indi_device, "ON_COORD_SET", {"TRACK": True})
        ra_jnow, dec_jnow = precess(p.ra_deg, p.dec_deg, self.clock.now())
        coord = self._need(COORD)
        g0 = coord.generation
        await self.client.send_numbers(self.indi_device, COORD, {"RA": ra_jnow / 15.0, "DEC": dec_jnow})
        await self._await_motion(COORD, g0, "the slew to end", progress)

    async def _park(self, progress: Progress) -> None:
        park = self._need("TELESCOPE_PARK")
        g0 = park.generation
        await self.client.send_switches(self.indi_device, "TELESCOPE_PARK", {"PARK": True, "UNPARK": False})
        await self._await_motion("TELESCOPE_PARK", g0, "park", progress)

    async def abort(self) -> Reading:
        try:
            await self.client.send_switches(self.indi_device, "TELESCOPE_ABORT_MOTION", {"ABORT": True})
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()
