"""An INDI camera (CCD): expose (the image arrives as a BLOB), cooler; our headers and a WCS added.

The FITS file is written as ``<path>.tmp`` and renamed to the path the gateway chose, so a reader
never sees half an image. The pointing (and the focal length, for the WCS) comes from the mount's
driver, the filter from the wheel's: any DeviceDriver of those kinds, INDI or not.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pyros_common.clock import Clock
from pyros_common.domain.sky.sites import Site
from pyros_simulators.astro import radec_to_altaz

from pyros_device_gateway.domain import CoolerParams, ExposeParams
from pyros_device_gateway.drivers.base import (
    DeviceDriver,
    DriverCommand,
    DriverError,
    Progress,
    Reading,
    no_progress,
)
from pyros_device_gateway.drivers.indi.client import IndiClient, IndiError
from pyros_device_gateway.drivers.indi.device import IndiDriver

EXPOSURE = "CCD_EXPOSURE"
BLOB = "CCD1"
FRAME_TYPES = {"light": "FRAME_LIGHT", "bias": "FRAME_BIAS", "dark": "FRAME_DARK", "flat": "FRAME_FLAT"}


@dataclass(frozen=True)
class Frame:
    """What the FITS headers say about one exposure, gathered when it starts."""

    start: datetime
    params: ExposeParams
    filter: str
    ra_deg: float | None  # the mount's pointing (ICRS), for the WCS and the airmass
    dec_deg: float | None
    pixel_um: tuple[float, float] | None  # binned pixel size
    focal_length_mm: float | None
    telescope: str
    instrument: str
    temperature_c: float | None
    lat_deg: float
    lon_deg: float


def airmass(alt_deg: float) -> float:
    """Hardie's airmass, good to 0.1 % above 10 degrees of altitude."""
    sec_z = 1.0 / math.sin(math.radians(alt_deg))
    s = sec_z - 1.0
    return sec_z - 0.0018167 * s - 0.002875 * s**2 - 0.0008083 * s**3


def write_fits(data: bytes, path: Path, frame: Frame) -> None:
    """The BLOB with our headers (and a TAN WCS unless the camera wrote one) as ``path``, atomically."""
    from astropy.io import fits

    p = frame.params
    with fits.open(io.BytesIO(data)) as hdul:
        hdu = hdul[0]
        h = hdu.header
        h["DATE-OBS"] = (frame.start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "UTC start of exposure")
        h["MJD-OBS"] = (round(frame.start.timestamp() / 86400.0 + 40587.0, 8), "[d] MJD of DATE-OBS")
        h["EXPTIME"] = (float(p.exposure_s), "[s] exposure time")
        h["FILTER"] = (frame.filter, "filter name")
        h["OBJECT"] = (p.object, "target name")
        h["IMAGETYP"] = (p.image_type, "light, bias, dark or flat")
        h["TELESCOP"] = (frame.telescope, "telescope")
        h["INSTRUME"] = (frame.instrument, "instrument")
        ra = p.ra_deg if p.ra_deg is not None else frame.ra_deg
        dec = p.dec_deg if p.dec_deg is not None else frame.dec_deg
        if ra is not None and dec is not None:
            h["RA"] = (float(ra), "[deg] ICRS right ascension of the pointing")
            h["DEC"] = (float(dec), "[deg] ICRS declination of the pointing")
        if frame.ra_deg is not None and frame.dec_deg is not None:
            mid = frame.start + timedelta(seconds=p.exposure_s / 2.0)
            alt, _az = radec_to_altaz(
                frame.ra_deg, frame.dec_deg, lat_deg=frame.lat_deg, lon_deg=frame.lon_deg, when=mid
            )
            if alt > 1.0:
                h["AIRMASS"] = (round(airmass(alt), 4), "airmass at mid-exposure (Hardie)")
        h["REQUEST"] = (p.request_id or "", "request id")
        h["SEQUENCE"] = (p.sequence_id or "", "sequence id")
        h["ALBUM"] = (p.album_id or "", "album (detector) id")
        h["PLAN"] = (p.plan_id or "", "plan id")
        h["FRAMENUM"] = (p.frame, "frame number within the plan")
        if frame.temperature_c is not None:
            h["CCD-TEMP"] = (round(frame.temperature_c, 2), "[degC] detector temperature")
        has_wcs = "CTYPE1" in h and "CTYPE2" in h
        if not has_wcs and frame.ra_deg is not None and frame.dec_deg is not None:
            if frame.pixel_um is not None and frame.focal_length_mm:
                nx, ny = int(h.get("NAXIS1", 0)), int(h.get("NAXIS2", 0))
                sx, sy = (
                    math.degrees(um * 1e-3 / frame.focal_length_mm) for um in frame.pixel_um
                )  # [deg/px]
                h["WCSAXES"] = 2
                h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
                h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
                h["CRPIX1"], h["CRPIX2"] = (nx + 1) / 2.0, (ny + 1) / 2.0
                h["CRVAL1"] = (float(frame.ra_deg), "[deg] mount pointing, ICRS")
                h["CRVAL2"] = (float(frame.dec_deg), "[deg] mount pointing, ICRS")
                h["CD1_1"], h["CD1_2"] = -sx, 0.0  # north up, east left
                h["CD2_1"], h["CD2_2"] = 0.0, sy
                h["RADESYS"], h["EQUINOX"] = "ICRS", 2000.0
                h["PIXSCALE"] = (round(sy * 3600.0, 5), "[arcsec/px] from pixel size and focal length")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        hdul.writeto(tmp, overwrite=True, output_verify="silentfix")
    os.replace(tmp, path)


class IndiCameraDriver(IndiDriver):
    """A CCD behind indiserver; ``telescope`` and ``filterwheel`` give the pointing and filter."""

    kind = "camera"
    commands = frozenset({"expose", "cooler"})
    ready_property = EXPOSURE

    def __init__(
        self,
        device_id: str,
        client: IndiClient,
        *,
        indi_device: str,
        clock: Clock,
        site: Site,
        telescope_name: str,
        instrument: str | None = None,
        telescope: DeviceDriver | None = None,
        filterwheel: DeviceDriver | None = None,
        focal_length_mm: float | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(device_id, client, indi_device=indi_device, clock=clock, timeout_s=timeout_s)
        self.site = site
        self.telescope_name = telescope_name
        self.instrument = instrument or indi_device
        self.telescope = telescope
        self.filterwheel = filterwheel
        self.focal_length_mm = focal_length_mm
        self.setpoint_c: float | None = None
        self.frames = 0

    async def on_connected(self) -> None:
        await self.client.enable_blobs(self.indi_device, "Also")
        if self.setpoint_c is not None:  # a camera that comes back cools to its set point again
            await self.client.send_numbers(
                self.indi_device, "CCD_TEMPERATURE", {"CCD_TEMPERATURE_VALUE": self.setpoint_c}
            )

    async def status(self) -> Reading:
        down = self.offline()
        if down is not None:
            return down
        exp = self._need(EXPOSURE)
        values: dict[str, float | str | bool] = {"frames": self.frames, "indi_state": exp.state}
        if self.setpoint_c is not None:
            values["setpoint_c"] = self.setpoint_c
        left = self.number(EXPOSURE, "CCD_EXPOSURE_VALUE")
        if exp.state == "Busy" and left is not None:
            values["remaining_s"] = left
        state = "exposing" if exp.state == "Busy" else "error" if exp.state == "Alert" else "idle"
        return Reading(
            state=state,  # type: ignore[arg-type]
            ok=exp.state != "Alert",
            error=exp.message if exp.state == "Alert" else "",
            temperature_c=self.number("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE"),
            values=values,
        )

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        p = command.params
        try:
            if command.name == "expose" and isinstance(p, ExposeParams):
                if command.image_path is None:
                    raise DriverError("expose needs an image path (chosen by the gateway)")
                path, frame = await self._expose(p, command.image_path, progress)
                reading = await self.status()
                values = dict(reading.values)
                values["filter"] = frame.filter
                return Reading(
                    state=reading.state,
                    ok=reading.ok,
                    error=reading.error,
                    temperature_c=reading.temperature_c,
                    values=values,
                    image=path,
                )
            if command.name == "cooler" and isinstance(p, CoolerParams):
                self._need("CCD_TEMPERATURE")
                self.setpoint_c = p.setpoint_c
                await self.client.send_numbers(
                    self.indi_device, "CCD_TEMPERATURE", {"CCD_TEMPERATURE_VALUE": p.setpoint_c}
                )
                return await self.status()
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        raise DriverError(f"{self.device_id} does not support {command.name}")

    async def _frame(self, p: ExposeParams) -> Frame:
        ra = dec = None
        focal = self.focal_length_mm or self.number("SCOPE_INFO", "FOCAL_LENGTH") or None
        if self.telescope is not None:
            mount = await self.telescope.status()
            if mount.ok:
                ra, dec = mount.ra_deg, mount.dec_deg
            f = mount.values.get("focal_length_mm")
            if focal is None and isinstance(f, float) and f > 0:
                focal = f
        filt = p.filter
        if filt is None and self.filterwheel is not None:
            wheel = await self.filterwheel.status()
            current = wheel.values.get("filter")
            filt = current if isinstance(current, str) else None
        px = self.number("CCD_INFO", "CCD_PIXEL_SIZE_X")
        py = self.number("CCD_INFO", "CCD_PIXEL_SIZE_Y")
        bx = self.number("CCD_BINNING", "HOR_BIN") or 1.0
        by = self.number("CCD_BINNING", "VER_BIN") or 1.0
        return Frame(
            start=self.clock.now(),
            params=p,
            filter=filt or "NONE",
            ra_deg=ra,
            dec_deg=dec,
            pixel_um=(px * bx, py * by) if px and py else None,
            focal_length_mm=focal,
            telescope=self.telescope_name,
            instrument=self.instrument,
            temperature_c=self.number("CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE"),
            lat_deg=self.site.lat_deg,
            lon_deg=self.site.lon_deg,
        )

    async def _expose(self, p: ExposeParams, path: Path, progress: Progress) -> tuple[Path, Frame]:
        exp = self._need(EXPOSURE)
        if exp.state == "Busy":
            raise DriverError(f"{self.indi_device} is already exposing")
        if self._vec("CCD_FRAME_TYPE") is not None:
            await self.client.send_switches(
                self.indi_device, "CCD_FRAME_TYPE", {FRAME_TYPES[p.image_type]: True}
            )
        frame = await self._frame(p)
        blob = self._vec(BLOB)
        b0 = blob.generation if blob is not None else 0
        g0 = exp.generation
        await self.client.send_numbers(self.indi_device, EXPOSURE, {"CCD_EXPOSURE_VALUE": p.exposure_s})

        def image_arrived() -> bool:
            b = self._vec(BLOB)
            e = self._need(EXPOSURE)
            return (b is not None and b.generation > b0 and bool(b.blobs)) or (
                e.generation > g0 and e.state == "Alert"
            )

        await self.settle(
            EXPOSURE, g0, "the exposure to end", progress, timeout_s=p.exposure_s + self.timeout_s
        )
        try:
            await self.client.wait_for(image_arrived, self.timeout_s, f"the image of {self.indi_device}")
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        vec = self._need(BLOB)
        if not vec.blobs:
            raise DriverError(f"{self.indi_device} ended the exposure without an image")
        image = next(iter(vec.blobs.values()))
        if not image.format.startswith(".fits"):
            raise DriverError(
                f"{self.indi_device} sent a {image.format!r} image; set CCD_TRANSFER_FORMAT to FITS"
            )
        await asyncio.to_thread(write_fits, image.data, path, frame)
        self.frames += 1
        return path, frame

    async def abort(self) -> Reading:
        try:
            await self.client.send_switches(self.indi_device, "CCD_ABORT_EXPOSURE", {"ABORT": True})
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        return await self.status()
