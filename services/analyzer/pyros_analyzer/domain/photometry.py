"""Photometric zero point against the catalogue stars matched in the field."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


class NoZeroPoint(Exception):
    """Too few unsaturated, well-measured catalogue stars to fit a zero point."""


@dataclass(frozen=True)
class ZeroPoint:
    """mag = zp - 2.5 log10(flux / exposure_s), fitted on ``n_stars`` stars."""

    zp: float
    error: float  # of the mean [mag]
    scatter: float  # per star [mag]
    n_stars: int

    def magnitude(self, flux: F64, flux_err: F64, exposure_s: float) -> tuple[F64, F64]:
        """(mag, 1-sigma error) of fluxes [ADU over the aperture]; NaN for non-positive fluxes."""
        f = np.asarray(flux, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = np.where(f > 0, self.zp - 2.5 * np.log10(f / exposure_s), np.nan)
            err = np.where(f > 0, 1.0857 * np.asarray(flux_err) / f, np.nan)
        return mag, np.hypot(err, self.error)


def instrumental(flux: F64, exposure_s: float) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, -2.5 * np.log10(np.asarray(flux, dtype=np.float64) / exposure_s), np.nan)


def fit_zero_point(
    catalogue_mag: F64,
    flux: F64,
    flux_err: F64,
    peak: F64,
    *,
    exposure_s: float,
    saturation_adu: float,
    min_snr: float = 10.0,
    min_stars: int = 3,
    sigma: float = 3.0,
) -> ZeroPoint:
    """Clipped weighted mean of catalogue minus instrumental magnitude over the good stars."""
    if exposure_s <= 0:
        raise NoZeroPoint("exposure time is 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(flux_err > 0, flux / flux_err, 0.0)
    good = (snr >= min_snr) & (peak < saturation_adu) & np.isfinite(catalogue_mag)
    if int(good.sum()) < min_stars:
        raise NoZeroPoint(f"{int(good.sum())} unsaturated catalogue stars with SNR >= {min_snr:g}")
    d = catalogue_mag[good] - instrumental(flux[good], exposure_s)
    w = 1.0 / (np.square(1.0857 / snr[good]) + 0.02**2)  # a 0.02 mag floor: colour terms, catalogue
    keep = np.ones(d.size, dtype=bool)
    zp = float(np.median(d))
    for _ in range(5):
        resid = d - zp
        mad = float(np.median(np.abs(resid[keep]))) * 1.4826
        new_keep = np.abs(resid) <= max(sigma * mad, 0.05)
        zp = float(np.sum(w[new_keep] * d[new_keep]) / np.sum(w[new_keep]))
        if (new_keep == keep).all():
            break
        keep = new_keep
    scatter = float(np.std(d[keep])) if keep.sum() > 1 else 0.0
    err = max(scatter / math.sqrt(int(keep.sum())), float(1.0 / math.sqrt(np.sum(w[keep]))))
    return ZeroPoint(zp=zp, error=err, scatter=scatter, n_stars=int(keep.sum()))
