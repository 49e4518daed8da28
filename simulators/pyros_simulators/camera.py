"""Simulated VIS and NIR cameras: exposures on the clock, synthetic FITS images written atomically."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray
from pyros_common.clock import Clock

from pyros_simulators.base import Aborted, SimulatedDevice, SimulatorError

ImageType = Literal["light", "bias", "dark", "flat"]


@dataclass(frozen=True)
class CameraConfig:
    """Detector model; electrons and ADU are linked by ``gain_e_per_adu``."""

    detector: Literal["VIS", "NIR"]
    shape: tuple[int, int] = (512, 512)
    bias_adu: float = 1000.0
    gain_e_per_adu: float = 1.5
    read_noise_e: float = 5.0
    dark_e_per_s: float = 0.02
    sky_e_per_s: float = 5.0
    readout_s: float = 2.0
    temperature_c: float = -60.0
    n_stars: int = 12
    pixel_scale_arcsec: float = 0.38
    fwhm_px: float = 3.0
    max_exposure_s: float = 3600.0
    seed: int = 0
    instrument: str = "simulator"


VIS = CameraConfig(detector="VIS", instrument="COLIBRI-DDRAGO-SIM")
NIR = CameraConfig(
    detector="NIR",
    bias_adu=3000.0,
    gain_e_per_adu=2.5,
    read_noise_e=15.0,
    dark_e_per_s=0.5,
    sky_e_per_s=60.0,
    readout_s=3.0,
    temperature_c=-180.0,  # HgCdTe runs cryogenic
    pixel_scale_arcsec=0.65,
    fwhm_px=2.5,
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
    extra_headers: dict[str, str | float | int | bool] = field(default_factory=dict)


def synthetic_image(
    config: CameraConfig, exposure_s: float, image_type: ImageType, rng: np.random.Generator
) -> NDArray[np.uint16]:
    """Bias + dark + sky + stars (Poisson), read noise (Gaussian), in ADU, saturated at 65535."""
    ny, nx = config.shape
    electrons = np.full((ny, nx), config.dark_e_per_s * exposure_s, dtype=np.float64)
    if image_type in ("light", "flat"):
        sky = config.sky_e_per_s * exposure_s * (200.0 if image_type == "flat" else 1.0)
        electrons += sky
    if image_type == "light" and exposure_s > 0:
        yy, xx = np.mgrid[0:ny, 0:nx]
        sigma = config.fwhm_px / 2.3548
        for _ in range(config.n_stars):
            x0, y0 = rng.uniform(10, nx - 10), rng.uniform(10, ny - 10)
            flux_e = 10 ** rng.uniform(3.0, 5.5) * exposure_s  # total electrons of the star
            # Only a 12-sigma stamp: a full-frame Gaussian per star is needlessly slow.
            r = int(6 * sigma) + 1
            ys, xs = (
                slice(max(0, int(y0) - r), min(ny, int(y0) + r + 1)),
                slice(max(0, int(x0) - r), min(nx, int(x0) + r + 1)),
            )
            d2 = (xx[ys, xs] - x0) ** 2 + (yy[ys, xs] - y0) ** 2
            electrons[ys, xs] += flux_e / (2 * np.pi * sigma**2) * np.exp(-d2 / (2 * sigma**2))
    signal = rng.poisson(np.clip(electrons, 0.0, None)).astype(np.float64)
    signal += rng.normal(0.0, config.read_noise_e, size=signal.shape)
    adu = config.bias_adu + signal / config.gain_e_per_adu
    return np.clip(np.rint(adu), 0, 65535).astype(np.uint16)


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

    def __init__(self, clock: Clock, config: CameraConfig, name: str | None = None) -> None:
        super().__init__(clock, name or f"cam-{config.detector.lower()}")
        self.config = config
        self._rng = np.random.default_rng(config.seed)
        self.frames = 0
        self.last_image: Path | None = None

    @property
    def temperature_c(self) -> float:
        return self.config.temperature_c

    def header(self, req: ExposureRequest, start: datetime) -> fits.Header:
        """The FITS header of an exposure that started at ``start``."""
        c = self.config
        h = fits.Header()
        h["DATE-OBS"] = (start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "UTC start of exposure")
        h["EXPTIME"] = (float(req.exposure_s), "[s] exposure time")
        h["FILTER"] = (req.filter, "filter name")
        h["OBJECT"] = (req.object, "target name")
        h["IMAGETYP"] = (req.image_type, "light, bias, dark or flat")
        if req.ra_deg is not None and req.dec_deg is not None:
            h["RA"] = (float(req.ra_deg), "[deg] ICRS right ascension of the pointing")
            h["DEC"] = (float(req.dec_deg), "[deg] ICRS declination of the pointing")
        h["DETECTOR"] = (c.detector, "detector")
        h["INSTRUME"] = (c.instrument, "instrument")
        h["GAIN"] = (c.gain_e_per_adu, "[e-/ADU]")
        h["RDNOISE"] = (c.read_noise_e, "[e-] read noise")
        h["CCD-TEMP"] = (c.temperature_c, "[degC] detector temperature")
        h["PIXSCALE"] = (c.pixel_scale_arcsec, "[arcsec/px]")
        h["FRAMENUM"] = (self.frames, "frame counter of this camera")
        for k, v in req.extra_headers.items():
            h[k] = v
        return h

    async def expose(self, req: ExposureRequest) -> Path:
        """Take one exposure and write it to ``req.path``; returns the path once complete."""
        if not 0.0 <= req.exposure_s <= self.config.max_exposure_s:
            raise SimulatorError(f"exposure_s={req.exposure_s} outside [0, {self.config.max_exposure_s}]")
        self._begin()
        start = self.clock.now()
        self.state = "exposing"
        try:
            await self._wait(req.exposure_s + self.config.readout_s)
        except Aborted:
            self.state = "idle"
            raise
        try:
            self.frames += 1
            header = self.header(req, start)
            data = synthetic_image(self.config, req.exposure_s, req.image_type, self._rng)
            path = await asyncio.to_thread(write_fits_atomically, req.path, data, header)
        except OSError as exc:
            self.state = "error"
            self.error = f"cannot write {req.path}: {exc}"
            raise SimulatorError(self.error) from exc
        finally:
            if self.state == "exposing":
                self.state = "idle"
        self.last_image = path
        return path
