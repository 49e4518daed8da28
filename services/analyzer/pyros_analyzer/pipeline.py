"""One image through the analysis: read, calibrate, extract, solve, zero point, write products.

Runs in a worker thread (numpy, sep and the FITS I/O release the GIL). Every failure becomes
a reason in the result rather than an exception, so the service always has something to say.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pyros_analyzer import astrometry_net
from pyros_analyzer.catalogue import Catalogue, CatalogueUnavailable, Stars
from pyros_analyzer.domain.astrometry import Solution, SolveFailed, TanWcs, refine
from pyros_analyzer.domain.calibration import CalibrationError, Master, calibrate
from pyros_analyzer.domain.photometry import NoZeroPoint, ZeroPoint, fit_zero_point
from pyros_analyzer.domain.sources import Sources, extract

F64 = NDArray[np.float64]
# what a fit on exact simulated positions cannot see: catalogue errors, field distortion, refraction
ASTROMETRIC_FLOOR_ARCSEC = 0.05


class BadImage(ValueError):
    """The file is not a FITS image we can analyse (corrupt, truncated, no data, no WCS)."""


@dataclass(frozen=True)
class Frame:
    data: NDArray[Any]
    header: dict[str, Any]


@dataclass
class ImageResult:
    """Everything one image told us."""

    path: str
    detector: str
    filter: str
    exposure_s: float
    taken_at: datetime | None
    shape: tuple[int, int] = (0, 0)
    calibrations: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # missing masters and the like: analysis went on
    failure: str | None = None  # the reason this image gave no astrometry (bad file, failed solve)
    n_sources: int = 0
    solve_method: str | None = None
    wcs: TanWcs | None = None
    n_matched: int = 0
    wcs_rms_arcsec: float | None = None
    wcs_error_arcsec: float | None = None
    zero_point: ZeroPoint | None = None
    sources_world: dict[str, F64] = field(default_factory=dict)  # ra, dec, mag, mag_err, snr, pos_err
    stars: Stars | None = None
    calibrated_path: str | None = None
    catalogue_path: str | None = None
    seconds: float = 0.0

    @property
    def mid_time(self) -> datetime | None:
        return None if self.taken_at is None else self.taken_at + timedelta(seconds=self.exposure_s / 2.0)

    def covers(self, ra_deg: float, dec_deg: float, margin_px: float = 10.0) -> bool:
        if self.wcs is None:
            return False
        x, y = self.wcs.world2pix(np.array([ra_deg]), np.array([dec_deg]))
        ny, nx = self.shape
        return bool(margin_px <= x[0] < nx - margin_px and margin_px <= y[0] < ny - margin_px)


def read_frame(path: Path) -> Frame:
    """The primary image and header; BadImage with the reason when it cannot be read."""
    import warnings

    from astropy.io import fits

    try:
        with warnings.catch_warnings(), open(path, "rb") as fh:
            warnings.simplefilter("error")  # astropy warns on a truncated or malformed file: refuse it
            with fits.open(fh, memmap=False) as hdul:  # raw frames are scaled uint16: no memmap
                hdu = hdul[0]
                if hdu.data is None and len(hdul) > 1:
                    hdu = hdul[1]
                if hdu.data is None or hdu.data.ndim != 2:
                    raise BadImage(f"{path.name}: no 2-D image in the file")
                data = np.asarray(hdu.data)
                header = {str(k): v for k, v in hdu.header.items() if k}
    except BadImage:
        raise
    except Exception as exc:  # OSError, ValueError, astropy's VerifyWarning...: a file we cannot read
        raise BadImage(f"{path.name}: not a readable FITS file ({type(exc).__name__}: {exc})") from exc
    return Frame(data, header)


def _write_fits_atomically(path: Path, hdus: Any) -> None:
    import warnings

    from astropy.io.fits.verify import VerifyWarning

    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)  # a copied comment cut short is no reason to fail
        hdus.writeto(tmp, overwrite=True, output_verify="silentfix")
    os.replace(tmp, path)


def analyse(
    path: Path,
    *,
    detector: str,
    filter: str,
    exposure_s: float,
    taken_at: datetime | None,
    masters: dict[str, Master | None],
    catalogue: Catalogue,
    out_dir: Path | None,
    rel_to: Path | None = None,
    detect_sigma: float = 3.0,
    max_offset_arcmin: float = 8.0,
    max_rotation_deg: float = 1.0,
    min_matches: int = 3,
    saturation_adu: float = 60000.0,
    use_astrometry_net: bool = True,
) -> ImageResult:
    """Calibrate, extract, solve and fit the zero point of one light frame (never raises)."""
    import time

    t0 = time.perf_counter()
    res = ImageResult(str(path), detector, filter, exposure_s, taken_at)
    if not path.is_file():
        res.failure = f"image missing: {path.name} is not where the event says"
        return res
    try:
        frame = read_frame(path)
    except BadImage as exc:
        res.failure = f"corrupt FITS: {exc}"
        return res
    raw = frame.data
    res.shape = (int(raw.shape[0]), int(raw.shape[1]))
    bias, dark, flat = masters.get("bias"), masters.get("dark"), masters.get("flat")
    for kind, m in (("bias", bias), ("dark", dark), ("flat", flat)):
        if m is None:
            res.problems.append(f"no master {kind} for {detector}" + (f" {filter}" if kind == "flat" else ""))
        elif m.data.shape != raw.shape:
            res.problems.append(f"master {kind} {m.data.shape} does not fit the image {raw.shape}")
            masters = {**masters, kind: None}
    try:
        use = {k: (m.data if m is not None else None) for k, m in masters.items()}
        img, res.calibrations = calibrate(
            raw, exposure_s=exposure_s, bias=use.get("bias"), dark_rate=use.get("dark"), flat=use.get("flat")
        )
    except CalibrationError as exc:
        res.failure = f"calibration: {exc}"
        return res
    gain = float(frame.header.get("GAIN", 1.0) or 1.0)
    try:
        src = extract(img, threshold_sigma=detect_sigma, gain_e_per_adu=gain)
    except Exception as exc:  # sep on a pathological frame (all NaN, constant)
        res.failure = f"extraction: {exc}"
        return res
    res.n_sources = len(src)
    try:
        guess = TanWcs.from_header(frame.header)
    except ValueError as exc:
        res.failure = f"solve failed: no header WCS to start from ({exc})"
        return res
    ny, nx = res.shape
    centre = guess.pix2world(np.array([(nx - 1) / 2.0]), np.array([(ny - 1) / 2.0]))
    radius = math.hypot(nx, ny) / 2.0 * guess.scale_arcsec / 3600.0 + max_offset_arcmin / 60.0
    try:
        stars = catalogue.cone(float(centre[0][0]), float(centre[1][0]), radius)
    except CatalogueUnavailable as exc:
        res.failure = f"solve failed: catalogue unavailable ({exc})"
        return res
    res.stars = stars
    sol: Solution | None = None
    if (
        use_astrometry_net
        and astrometry_net.solvable(res.shape, guess.scale_arcsec, stars.mag)
        and astrometry_net.available()
    ):
        try:
            found = astrometry_net.solve_field(src.x, src.y, src.flux, res.shape, guess, radius_deg=radius)
        except SolveFailed as exc:
            res.problems.append(f"solve-field: {exc}")
        else:
            try:  # the pairs for the zero point, and a last least-squares polish on them
                sol = refine(
                    src.x,
                    src.y,
                    src.flux,
                    stars.ra_deg,
                    stars.dec_deg,
                    stars.mag,
                    found,
                    res.shape,
                    max_offset_arcmin=0.5,
                    max_rotation_deg=0.1,
                    rotation_step_deg=0.05,
                    min_votes=min_matches,
                )
            except SolveFailed:
                e = np.empty(0, dtype=np.int64)
                sol = Solution(found, "solve-field", 0, 1.0, e, e, 0, (0.0, 0.0), 0.0)  # 1": unmeasured
            sol = dataclasses.replace(sol, method="solve-field")
    if sol is None:
        try:
            sol = refine(
                src.x,
                src.y,
                src.flux,
                stars.ra_deg,
                stars.dec_deg,
                stars.mag,
                guess,
                res.shape,
                max_offset_arcmin=max_offset_arcmin,
                max_rotation_deg=max_rotation_deg,
                min_votes=min_matches,
            )
        except SolveFailed as exc:
            res.failure = f"solve failed: {exc} ({catalogue.name})"
            return res
    res.solve_method = f"{sol.method}:{catalogue.name}"
    res.wcs, res.n_matched = sol.wcs, sol.n_matched
    res.wcs_rms_arcsec, res.wcs_error_arcsec = sol.rms_arcsec, sol.uncertainty_arcsec
    # a star is saturated when its raw peak (above the raw background) reaches the raw limit
    sat = saturation_adu - float(np.median(raw[::8, ::8]))
    try:
        res.zero_point = fit_zero_point(
            stars.mag[sol.star_index],
            src.flux[sol.source_index],
            src.flux_err[sol.source_index],
            src.peak[sol.source_index],
            exposure_s=max(exposure_s, 1e-6),
            saturation_adu=sat,
        )
    except NoZeroPoint as exc:
        res.problems.append(f"no zero point: {exc}")
    res.sources_world = _world(src, sol, res.zero_point, exposure_s)
    if out_dir is not None:
        _write_products(res, path, img, frame.header, src, sol, out_dir, rel_to)
    res.seconds = time.perf_counter() - t0
    return res


def _world(src: Sources, sol: Solution, zp: ZeroPoint | None, exposure_s: float) -> dict[str, F64]:
    ra, dec = sol.wcs.pix2world(src.x, src.y)
    snr = src.snr
    fwhm_arcsec = 2.0 * np.clip(src.hlr_px, 0.5, 20.0) * sol.wcs.scale_arcsec
    centroid = fwhm_arcsec / (2.3548 * np.maximum(snr, 1.0)) * math.sqrt(2.0)
    pos_err = np.hypot(np.hypot(centroid, sol.uncertainty_arcsec), ASTROMETRIC_FLOOR_ARCSEC)
    if zp is not None:
        mag, mag_err = zp.magnitude(src.flux, src.flux_err, max(exposure_s, 1e-6))
    else:
        mag, mag_err = np.full(len(src), np.nan), np.full(len(src), np.nan)
    return {
        "ra": ra,
        "dec": dec,
        "mag": mag,
        "mag_err": mag_err,
        "snr": snr,
        "pos_err": pos_err,
        "x": src.x,
        "y": src.y,
        "flux": src.flux,
    }


def _write_products(
    res: ImageResult,
    path: Path,
    img: NDArray[np.float32],
    header: dict[str, Any],
    src: Sources,
    sol: Solution,
    out_dir: Path,
    rel_to: Path | None,
) -> None:
    from astropy.io import fits

    h = fits.Header()
    for k, v in header.items():
        if k in (
            "SIMPLE",
            "BITPIX",
            "NAXIS",
            "NAXIS1",
            "NAXIS2",
            "EXTEND",
            "BZERO",
            "BSCALE",
        ) or k.startswith(("CD", "CRVAL", "CRPIX", "CTYPE", "CUNIT", "PC", "CDELT")):
            continue
        try:
            h[k] = v
        except (ValueError, TypeError):
            continue
    for k, v in sol.wcs.cards().items():
        h[k] = v
    h["WCSMETH"] = (res.solve_method or "", "how the WCS was solved")
    h["WCSNMAT"] = (sol.n_matched, "source-star pairs of the WCS fit")
    h["WCSRMS"] = (round(sol.rms_arcsec, 4), "[arcsec] rms of the WCS fit")
    h["CALSTEPS"] = (",".join(res.calibrations) or "none", "calibrations applied")
    h["RAWFILE"] = path.name  # long names: no room for a comment
    if res.zero_point is not None:
        h["MAGZP"] = (round(res.zero_point.zp, 4), "mag = MAGZP - 2.5 log10(flux / EXPTIME)")
        h["MAGZPERR"] = (round(res.zero_point.error, 4), "[mag]")
    stem = path.name.removesuffix(".fits")
    cal = out_dir / f"{stem}.cal.fits"
    _write_fits_atomically(cal, fits.HDUList([fits.PrimaryHDU(img, h)]))
    w = res.sources_world
    cols = [
        fits.Column("X", "D", array=src.x + 1.0, unit="pix"),
        fits.Column("Y", "D", array=src.y + 1.0, unit="pix"),
        fits.Column("RA", "D", array=w["ra"], unit="deg"),
        fits.Column("DEC", "D", array=w["dec"], unit="deg"),
        fits.Column("FLUX", "D", array=src.flux, unit="adu"),
        fits.Column("FLUX_ERR", "D", array=src.flux_err, unit="adu"),
        fits.Column("MAG", "D", array=w["mag"], unit="mag"),
        fits.Column("MAG_ERR", "D", array=w["mag_err"], unit="mag"),
        fits.Column("POS_ERR", "D", array=w["pos_err"], unit="arcsec"),
    ]
    tab = fits.BinTableHDU.from_columns(cols, name="SOURCES")
    cat = out_dir / f"{stem}.cat.fits"
    _write_fits_atomically(
        cat, fits.HDUList([fits.PrimaryHDU(header=fits.Header({"RAWFILE": path.name})), tab])
    )
    base = rel_to or out_dir
    res.calibrated_path = str(cal.relative_to(base)) if cal.is_relative_to(base) else str(cal)
    res.catalogue_path = str(cat.relative_to(base)) if cat.is_relative_to(base) else str(cat)
