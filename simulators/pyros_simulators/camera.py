"""Simulated VIS and NIR cameras: a cooler on the clock, exposures + readout, realistic FITS images.

A light frame is the sky the mount points at: Tycho-2 and faint stars (``catalog``) through
a Moffat PSF (seeing x airmass^0.6, plus defocus from the focuser and the filter's focus
offset), the Moon/twilight sky background (``sky``), injected transients, vignetting, dark
current (doubling every ``dark_doubling_c``), bias, Poisson and read noise. The header WCS is
the nominal pointing; the sky was rendered a few arcmin and a fraction of a degree away
(a seeded pointing error per exposure), so an analyzer has to solve the field. The true WCS
is kept as the alternate WCS ``T`` (``CRVAL1T``...) plus ``TRUERA``/``TRUEDEC``/``TRUEROT``.
"""

from __future__ import annotations

import io
import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import NDArray
from pyros_common.clock import Clock

from pyros_simulators.astro import radec_to_altaz
from pyros_simulators.base import SimulatedDevice, SimulatorError
from pyros_simulators.catalog import CatalogueMissing, Stars
from pyros_simulators.imaging import digitise, field_radius_deg, flat_pattern, stamp_stars, tan_wcs
from pyros_simulators.sky import Injected, Sky, SkyState, offset_by

if TYPE_CHECKING:
    from pyros_simulators.filterwheel import FilterWheel
    from pyros_simulators.focuser import Focuser
    from pyros_simulators.telescope import Telescope

ImageType = Literal["light", "bias", "dark", "flat"]


@dataclass(frozen=True)
class CameraConfig:
    """Detector, optics and image model; electrons and ADU are linked by ``gain_e_per_adu``."""

    detector: Literal["VIS", "NIR"]
    shape: tuple[int, int] = (2048, 2048)  # (ny, nx) pixels
    pixel_scale_arcsec: float = 0.38
    rotation_deg: float = 0.0  # nominal position angle of the detector's +y axis, east of north
    bias_adu: float = 1000.0
    gain_e_per_adu: float = 1.5
    read_noise_e: float = 5.0
    full_well_e: float = 100_000.0
    dark_e_per_s: float = 0.02  # at ``temperature_c``
    dark_doubling_c: float = 6.0
    readout_s: float = 2.0
    temperature_c: float = -60.0  # cooler set point at power-on (the camera starts cold)
    ambient_c: float = 15.0
    min_setpoint_c: float = -100.0
    cooling_tau_s: float = 120.0  # e-folding time of the sensor temperature toward the set point
    seeing_fwhm_arcsec: float = 1.2  # at the zenith
    psf_beta: float = 3.0
    zeropoint_mag: float = 25.0  # a star of this magnitude gives 1 e-/s above the atmosphere
    extinction_mag_per_airmass: float = 0.15
    dark_sky_mag_arcsec2: float = 21.3
    moon_factor: float = 20.0  # full Moon at the zenith brightens the sky this many times
    flat_e_per_s: float = 5000.0  # flat-field lamp / screen
    vignetting: float = 0.15  # relative loss in the corners
    prnu: float = 0.005
    pointing_error_arcmin: tuple[float, float] = (1.0, 4.0)  # uniform in this range, random direction
    rotation_error_deg: float = 0.5  # uniform in +- this
    max_exposure_s: float = 3600.0
    seed: int = 0
    instrument: str = "simulator"
    telescope: str = "GFT (simulated)"

    @property
    def field_arcmin(self) -> tuple[float, float]:
        ny, nx = self.shape
        return nx * self.pixel_scale_arcsec / 60.0, ny * self.pixel_scale_arcsec / 60.0


VIS = CameraConfig(detector="VIS", instrument="COLIBRI-DDRAGO-SIM")
NIR = CameraConfig(
    detector="NIR",
    pixel_scale_arcsec=0.65,
    bias_adu=3000.0,
    gain_e_per_adu=2.5,
    read_noise_e=15.0,
    dark_e_per_s=0.5,
    readout_s=3.0,
    temperature_c=-180.0,  # HgCdTe runs cryogenic
    min_setpoint_c=-200.0,
    cooling_tau_s=1800.0,  # a cryostat is slow
    seeing_fwhm_arcsec=1.0,
    zeropoint_mag=24.0,
    dark_sky_mag_arcsec2=16.0,  # the NIR sky is bright (OH lines, thermal)
    moon_factor=2.0,
    seed=1,
    instrument="COLIBRI-CAGIRE-SIM",
)


@dataclass(frozen=True)
class ExposureRequest:
    """One exposure: how long, through what, of what, and where the file goes."""

    exposure_s: float
    path: Path
    filter: str = "CLEAR"
    object: str = ""
    ra_deg: float | None = None
    dec_deg: float | None = None
    image_type: ImageType = "light"
    request_id: str | None = None
    sequence_id: str | None = None
    album_id: str | None = None
    plan_id: str | None = None
    frame: int | None = None
    extra_headers: dict[str, str | float | int | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Exposure:
    """What an exposure saw, decided on the event loop before rendering in a thread."""

    req: ExposureRequest
    start: datetime
    frame_no: int
    temperature_c: float
    nominal: tuple[float, float]  # where the header WCS says the frame is
    true: tuple[float, float]  # where it really is
    true_rotation_deg: float
    airmass: float | None
    sky: SkyState
    fwhm_arcsec: float
    transients: list[tuple[float, float, float, str]]  # ra, dec, mag, name


def write_bytes_atomically(path: Path, blob: bytes) -> Path:
    """Write ``<path>.tmp`` then rename to ``path``: readers never see a half-written image."""
    if path.suffix != ".fits":
        raise SimulatorError(f"image path {path} must end in .fits")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_fits_atomically(path: Path, data: NDArray[Any], header: fits.Header) -> Path:
    """Write ``<path>.tmp`` then rename to ``path``: readers never see a half-written image."""
    if path.suffix != ".fits":
        raise SimulatorError(f"image path {path} must end in .fits")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fits.PrimaryHDU(data=data, header=header).writeto(tmp, overwrite=True, output_verify="exception")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class Camera(SimulatedDevice):
    """A camera: ``expose`` waits exposure + readout on the clock, then writes the FITS file."""

    def __init__(
        self,
        clock: Clock,
        config: CameraConfig,
        name: str | None = None,
        *,
        sky: Sky | None = None,
        telescope: Telescope | None = None,
        wheel: FilterWheel | None = None,
        focuser: Focuser | None = None,
    ) -> None:
        super().__init__(clock, name or f"cam-{config.detector.lower()}")
        self.config = config
        self.sky = sky if sky is not None else Sky(site=None, seed=config.seed)
        self.telescope = telescope
        self.wheel = wheel
        self.focuser = focuser
        self.frames = 0
        self.last_image: Path | None = None
        self.setpoint_c = config.temperature_c
        self._t_from = config.temperature_c
        self._t_since = clock.monotonic()
        self._flat: NDArray[np.float32] | None = None
        self._stream = zlib.crc32(self.name.encode())

    # --- cooler ---------------------------------------------------------------------------

    @property
    def temperature_c(self) -> float:
        """Sensor temperature now: exponential approach to the set point since it was last set."""
        c = self.config
        age = max(0.0, self.clock.monotonic() - self._t_since)
        return self.setpoint_c + (self._t_from - self.setpoint_c) * math.exp(-age / c.cooling_tau_s)

    @property
    def at_setpoint(self) -> bool:
        return abs(self.temperature_c - self.setpoint_c) < 0.5

    async def set_cooler(self, setpoint_c: float) -> None:
        """Aim the cooler at ``setpoint_c``; returns at once, the sensor follows its curve on the clock."""
        c = self.config
        if not c.min_setpoint_c <= setpoint_c <= c.ambient_c:
            raise SimulatorError(f"setpoint_c={setpoint_c} outside [{c.min_setpoint_c}, {c.ambient_c}]")
        self._begin()
        await self._wait(0.0)
        self._t_from, self._t_since = self.temperature_c, self.clock.monotonic()
        self.setpoint_c = setpoint_c

    def dark_e_per_s(self, temperature_c: float) -> float:
        c = self.config
        return float(c.dark_e_per_s * 2.0 ** ((temperature_c - c.temperature_c) / c.dark_doubling_c))

    # --- what an exposure sees ---------------------------------------------------------------

    def _pointing(self, req: ExposureRequest) -> tuple[float, float]:
        tel = self.telescope
        if tel is not None and (tel.tracking or req.ra_deg is None or req.dec_deg is None):
            return tel.position
        if req.ra_deg is not None and req.dec_deg is not None:
            return req.ra_deg, req.dec_deg
        return 0.0, 0.0  # no mount and no target: somewhere, consistently

    def observe(self, req: ExposureRequest, start: datetime, frame_no: int) -> Exposure:
        """Decide pointing error, seeing, background and transients of one exposure (seeded)."""
        c = self.config
        rng = np.random.default_rng([c.seed, self._stream, frame_no])
        nominal = self._pointing(req)
        lo, hi = c.pointing_error_arcmin
        err_arcmin = float(rng.uniform(lo, hi))
        true = offset_by(*nominal, err_arcmin / 60.0, float(rng.uniform(0.0, 360.0)))
        true_rot = c.rotation_deg + float(rng.uniform(-c.rotation_error_deg, c.rotation_error_deg))
        airmass = None
        site = self.sky.site
        if site is not None:
            alt, _ = radec_to_altaz(*true, lat_deg=site.lat_deg, lon_deg=site.lon_deg, when=start)
            airmass = 1.0 / math.sin(math.radians(max(alt, 5.0)))
        fwhm = c.seeing_fwhm_arcsec * (airmass or 1.0) ** 0.6
        if self.focuser is not None:
            offset = self.wheel.focus_offset(req.filter) if self.wheel is not None else 0
            fwhm = math.hypot(fwhm, self.focuser.blur_arcsec(offset))
        mid = start + timedelta(seconds=req.exposure_s / 2.0)
        transients: list[tuple[float, float, float, str]] = []
        if req.image_type == "light" and req.exposure_s > 0:
            radius = field_radius_deg(c.shape, c.pixel_scale_arcsec)
            found = self.sky.transients_at(*true, radius, mid)
            if found:
                w = tan_wcs(*true, rotation_deg=true_rot, scale_arcsec=c.pixel_scale_arcsec, shape=c.shape)
                ny, nx = c.shape
                for tr, mag in found:
                    x, y = w.all_world2pix([[tr.ra_deg, tr.dec_deg]], 0)[0]
                    if 0 <= x < nx and 0 <= y < ny:  # on the detector, not only near it
                        transients.append((tr.ra_deg, tr.dec_deg, mag, tr.name))
        return Exposure(
            req=req,
            start=start,
            frame_no=frame_no,
            temperature_c=self.temperature_c,
            nominal=nominal,
            true=true,
            true_rotation_deg=true_rot,
            airmass=airmass,
            sky=self.sky.state(start),
            fwhm_arcsec=fwhm,
            transients=transients,
        )

    def flat(self) -> NDArray[np.float32]:
        if self._flat is None:
            c = self.config
            self._flat = flat_pattern(c.shape, vignetting=c.vignetting, prnu=c.prnu, seed=c.seed)
        return self._flat

    def wcs(self, exp: Exposure, *, true: bool) -> WCS:
        c = self.config
        ra, dec = exp.true if true else exp.nominal
        rot = exp.true_rotation_deg if true else c.rotation_deg
        return tan_wcs(ra, dec, rotation_deg=rot, scale_arcsec=c.pixel_scale_arcsec, shape=c.shape)

    def render(self, exp: Exposure) -> tuple[NDArray[np.uint16], str]:
        """The frame in ADU and the star catalogue used ('Tycho-2', or 'none' when not installed)."""
        c, req = self.config, exp.req
        t = req.exposure_s
        electrons = np.zeros(c.shape, dtype=np.float32)
        catalogue = "none"
        if req.image_type == "flat":
            electrons += np.float32(c.flat_e_per_s * t)
        elif req.image_type == "light" and t > 0:
            px_area = c.pixel_scale_arcsec**2
            sky_e = 10.0 ** (-0.4 * (c.dark_sky_mag_arcsec2 - c.zeropoint_mag)) * px_area
            electrons += np.float32(sky_e * exp.sky.brightening(c.moon_factor) * t)
            stars, catalogue = self._stars(exp)
            ras = np.concatenate([stars.ra_deg, np.array([tr[0] for tr in exp.transients])])
            decs = np.concatenate([stars.dec_deg, np.array([tr[1] for tr in exp.transients])])
            mags = np.concatenate([stars.mag, np.array([tr[2] for tr in exp.transients])])
            if ras.size:
                x, y = self.wcs(exp, true=True).all_world2pix(ras, decs, 0)
                ext = c.extinction_mag_per_airmass * (exp.airmass or 1.0)
                flux = 10.0 ** (-0.4 * (mags + ext - c.zeropoint_mag)) * t
                stamp_stars(
                    electrons,
                    np.asarray(x, dtype=np.float64),
                    np.asarray(y, dtype=np.float64),
                    flux,
                    fwhm_px=exp.fwhm_arcsec / c.pixel_scale_arcsec,
                    beta=c.psf_beta,
                )
        if req.image_type in ("light", "flat"):
            electrons *= self.flat()
        electrons += np.float32(self.dark_e_per_s(exp.temperature_c) * t)
        rng = np.random.default_rng([c.seed, self._stream, exp.frame_no, 1])
        data = digitise(
            electrons,
            read_noise_e=c.read_noise_e,
            gain_e_per_adu=c.gain_e_per_adu,
            bias_adu=c.bias_adu,
            full_well_e=c.full_well_e,
            rng=rng,
        )
        return data, catalogue

    def _stars(self, exp: Exposure) -> tuple[Stars, str]:
        radius = field_radius_deg(self.config.shape, self.config.pixel_scale_arcsec) + 0.01
        try:
            return self.sky.stars(*exp.true, radius), "Tycho-2"
        except CatalogueMissing:
            return self.sky.faint(*exp.true, radius), "none"

    def header(self, exp: Exposure, catalogue: str = "Tycho-2") -> fits.Header:
        """The FITS header of an exposure: standard keys, the nominal WCS, the true one as WCS 'T'."""
        c, req = self.config, exp.req
        h = fits.Header()
        h["DATE-OBS"] = (exp.start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "UTC start of exposure")
        h["EXPTIME"] = (float(req.exposure_s), "[s] exposure time")
        h["FILTER"] = (req.filter, "filter name")
        h["OBJECT"] = (req.object, "target name")
        h["IMAGETYP"] = (req.image_type, "light, bias, dark or flat")
        target = (req.ra_deg, req.dec_deg) if req.ra_deg is not None and req.dec_deg is not None else None
        if target is None and req.image_type == "light":
            target = exp.nominal
        if target is not None:
            h["RA"] = (float(target[0]), "[deg] ICRS right ascension of the pointing")
            h["DEC"] = (float(target[1]), "[deg] ICRS declination of the pointing")
        if exp.airmass is not None:
            h["AIRMASS"] = (round(exp.airmass, 4), "at the start of the exposure")
        h["TELESCOP"] = (c.telescope, "telescope")
        h["INSTRUME"] = (c.instrument, "instrument")
        h["DETECTOR"] = (c.detector, "detector")
        h["GAIN"] = (c.gain_e_per_adu, "[e-/ADU]")
        h["RDNOISE"] = (c.read_noise_e, "[e-] read noise")
        h["CCD-TEMP"] = (round(exp.temperature_c, 2), "[degC] detector temperature")
        h["SET-TEMP"] = (self.setpoint_c, "[degC] cooler set point")
        h["PIXSCALE"] = (c.pixel_scale_arcsec, "[arcsec/px]")
        h["FRAMENUM"] = (exp.frame_no, "frame counter of this camera")
        if self.focuser is not None:
            h["FOCUS"] = (self.focuser.position, "[steps] focuser position")
        for key, value, comment in (
            ("REQUEST", req.request_id, "request id"),
            ("SEQUENCE", req.sequence_id, "sequence id"),
            ("ALBUM", req.album_id, "album id"),
            ("PLAN", req.plan_id, "plan id"),
        ):
            if value:
                h[key] = (value, comment)
        if req.frame is not None:
            h["FRAME"] = (req.frame, "frame number within the plan")
        if req.image_type == "light":
            h.extend(self.wcs(exp, true=False).to_header(), update=True)
            true = self.wcs(exp, true=True).to_header(key="T")
            h.extend([card for card in true.cards if card.keyword != "WCSNAMET"], update=True)
            h["WCSNAMET"] = ("TRUE", "the WCS the simulator rendered with")
            h["TRUERA"] = (round(exp.true[0], 7), "[deg] simulator: true centre RA")
            h["TRUEDEC"] = (round(exp.true[1], 7), "[deg] simulator: true centre Dec")
            h["TRUEROT"] = (round(exp.true_rotation_deg, 5), "[deg] simulator: true rotation")
            h["SEEING"] = (round(exp.fwhm_arcsec, 3), "[arcsec] simulator: PSF FWHM")
            h["SUNALT"] = (round(exp.sky.sun_alt_deg, 2), "[deg] Sun altitude")
            h["MOONALT"] = (round(exp.sky.moon_alt_deg, 2), "[deg] Moon altitude")
            h["MOONILL"] = (round(exp.sky.moon_illumination, 3), "Moon illuminated fraction")
            h["STARCAT"] = (catalogue, "simulator: catalogue of the rendered stars")
            for k, (tra, tdec, tmag, _name) in enumerate(exp.transients[:9], start=1):
                h[f"INJRA{k}"] = (round(tra, 7), "[deg] simulator: injected transient RA")
                h[f"INJDEC{k}"] = (round(tdec, 7), "[deg] simulator: injected transient Dec")
                h[f"INJMAG{k}"] = (round(tmag, 3), "simulator: injected transient magnitude")
        for key, v in req.extra_headers.items():
            h[key] = v
        return h

    # --- the command ------------------------------------------------------------------------

    async def expose(self, req: ExposureRequest) -> Path:
        """Take one exposure and write it to ``req.path``; returns the path once complete.

        The frame is rendered in a worker thread while the exposure runs on the clock, so in
        real time it is ready before the readout ends. If it is not (a simulated clock that
        runs ahead), the camera waits for it without letting simulated time pass.
        """
        if not 0.0 <= req.exposure_s <= self.config.max_exposure_s:
            raise SimulatorError(f"exposure_s={req.exposure_s} outside [0, {self.config.max_exposure_s}]")
        if req.path.suffix != ".fits":
            raise SimulatorError(f"image path {req.path} must end in .fits")
        self._begin()
        start = self.clock.now()
        exp = self.observe(req, start, self.frames + 1)
        self.state = "exposing"
        job = _RENDERERS.submit(self._fits_bytes, exp)
        try:
            await self._wait(req.exposure_s + self.config.readout_s)
        except BaseException:
            job.cancel()
            if self.state == "exposing":
                self.state = "idle"
            raise
        try:
            self.frames += 1
            path = write_bytes_atomically(req.path, job.result())
        except OSError as exc:
            self.state = "error"
            self.error = f"cannot write {req.path}: {exc}"
            raise SimulatorError(self.error) from exc
        finally:
            if self.state == "exposing":
                self.state = "idle"
        mid = start + timedelta(seconds=req.exposure_s / 2.0)
        for tra, tdec, tmag, name in exp.transients:
            self.sky.record(Injected(tra, tdec, tmag, mid, str(path), name))
        self.last_image = path
        return path

    def _fits_bytes(self, exp: Exposure) -> bytes:
        data, catalogue = self.render(exp)
        buf = io.BytesIO()
        fits.PrimaryHDU(data=data, header=self.header(exp, catalogue)).writeto(buf, output_verify="exception")
        return buf.getvalue()


_RENDERERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sim-camera")
