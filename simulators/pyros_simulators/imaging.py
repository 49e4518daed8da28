"""Image formation for the simulated cameras: TAN WCS, Moffat stars stamped as cutouts, flat, noise.

Everything is vectorised numpy: stars are small PSF stamps accumulated with one ``bincount``
(never a full-frame profile per star), and photon plus read noise is one Gaussian draw per
pixel wherever read noise hides Poisson's skewness (``digitise``), so a 2048 x 2048 frame
takes a fraction of a second.
"""

from __future__ import annotations

import math

import numpy as np
from astropy.wcs import WCS
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
_EXACT_POISSON_BELOW_E = 30.0  # above this a Gaussian is indistinguishable from Poisson here
# Photon and read noise are drawn as one Gaussian when Poisson's skewness, once read noise is
# added, is at most this (read noise of 3 e- or more; the cameras have 5 and 15 e-).
GAUSSIAN_SKEW_MAX = 0.13


def tan_wcs(
    ra_deg: float, dec_deg: float, *, rotation_deg: float, scale_arcsec: float, shape: tuple[int, int]
) -> WCS:
    """A TAN WCS centred on (ra, dec): north up and east left at rotation 0, rotated counter-clockwise."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra_deg % 360.0, dec_deg]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    s, th = scale_arcsec / 3600.0, math.radians(rotation_deg)
    w.wcs.cd = [[-s * math.cos(th), s * math.sin(th)], [s * math.sin(th), s * math.cos(th)]]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def field_radius_deg(shape: tuple[int, int], scale_arcsec: float) -> float:
    """Radius of the circle through the corners of the frame [deg]."""
    ny, nx = shape
    return math.hypot(nx, ny) / 2.0 * scale_arcsec / 3600.0


def flat_pattern(shape: tuple[int, int], *, vignetting: float, prnu: float, seed: int) -> NDArray[np.float32]:
    """Relative response: radial vignetting (1 at the centre, 1 - vignetting in the corners) x PRNU."""
    ny, nx = shape
    y = (np.arange(ny, dtype=np.float32) - (ny - 1) / 2.0) / (ny / 2.0)
    x = (np.arange(nx, dtype=np.float32) - (nx - 1) / 2.0) / (nx / 2.0)
    r2 = (x[None, :] ** 2 + y[:, None] ** 2) / 2.0  # 1 in the corners
    flat = 1.0 - np.float32(vignetting) * r2
    if prnu > 0:
        rng = np.random.default_rng([seed, 4242])
        flat *= 1.0 + np.float32(prnu) * rng.standard_normal(shape, dtype=np.float32)
    return flat.astype(np.float32)


def moffat_alpha(fwhm_px: float, beta: float) -> float:
    return fwhm_px / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def stamp_stars(
    image: NDArray[np.float32],
    x: FloatArray,
    y: FloatArray,
    flux: FloatArray,
    *,
    fwhm_px: float,
    beta: float = 3.0,
    radius_px: int | None = None,
) -> None:
    """Add Moffat stars of total ``flux`` at 0-based pixel positions (x, y) to ``image`` in place."""
    ny, nx = image.shape
    r = radius_px if radius_px is not None else max(8, math.ceil(4.0 * fwhm_px))
    keep = (x > -r) & (x < nx + r) & (y > -r) & (y < ny + r) & (flux > 0)
    x, y, flux = x[keep], y[keep], flux[keep]
    if x.size == 0:
        return
    ix, iy = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    off = np.arange(-r, r + 1)
    dx = off[None, None, :] - (x - ix)[:, None, None]  # (n, 1, k)
    dy = off[None, :, None] - (y - iy)[:, None, None]  # (n, k, 1)
    alpha2 = moffat_alpha(fwhm_px, beta) ** 2
    psf = (1.0 + (dx * dx + dy * dy) / alpha2) ** (-beta)  # (n, k, k)
    psf *= (flux / psf.sum(axis=(1, 2)))[:, None, None]
    px = ix[:, None, None] + off[None, None, :]
    py = iy[:, None, None] + off[None, :, None]
    inside = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
    flat_index = (py * nx + px)[inside]
    image += (
        np.bincount(flat_index, weights=psf[inside], minlength=nx * ny).reshape(ny, nx).astype(np.float32)
    )


def poisson_skew_bound(read_noise_e: float) -> float:
    """The largest skewness that photon noise leaves in a pixel once read noise is added.

    Poisson(λ) plus N(0, r²) has third cumulant λ and variance λ + r², so its skewness is
    λ / (λ + r²)^1.5, largest at λ = 2 r², where it is 2 / (3^1.5 r) ≈ 0.385 / r: this is all
    that a Gaussian with the same mean and variance gets wrong."""
    if read_noise_e <= 0.0:
        return math.inf
    return 2.0 / (math.sqrt(27.0) * read_noise_e)


def digitise(
    electrons: NDArray[np.float32],
    *,
    read_noise_e: float,
    gain_e_per_adu: float,
    bias_adu: float,
    full_well_e: float,
    rng: np.random.Generator,
) -> NDArray[np.uint16]:
    """Photon noise, full well, read noise, gain and bias: the 16-bit frame a controller reads out.

    When read noise hides Poisson's skewness (``poisson_skew_bound`` ≤ ``GAUSSIAN_SKEW_MAX``:
    read noise ≥ 3 e-), photon and read noise are one Gaussian draw of variance λ + r², exact
    in mean and variance for every pixel; pixels near the full well keep the two draws, with the
    charge clipped before read-out. Otherwise Poisson is drawn exactly where λ is small. One
    normal draw per pixel, instead of Poisson for every dim pixel: a 2048 x 2048 dark frame went
    from 0.49 s to a tenth of that."""
    lam = np.clip(electrons, 0.0, None)
    rn = np.float32(read_noise_e)
    if poisson_skew_bound(read_noise_e) <= GAUSSIAN_SKEW_MAX:
        z = rng.standard_normal(lam.shape, dtype=np.float32)
        signal = lam + np.sqrt(lam + rn * rn) * z
        # Near the full well the charge saturates before read-out: two draws, as below.
        near = lam > np.float32(full_well_e - 8.0 * math.sqrt(full_well_e))
        if near.any():
            ln = lam[near]
            charge = ln + np.sqrt(ln) * rng.standard_normal(ln.shape, dtype=np.float32)
            np.minimum(charge, np.float32(full_well_e), out=charge)
            signal[near] = charge + rn * rng.standard_normal(ln.shape, dtype=np.float32)
    else:
        z = rng.standard_normal(lam.shape, dtype=np.float32)
        low = lam < _EXACT_POISSON_BELOW_E
        signal = lam + np.sqrt(lam) * z  # Gaussian photon noise where it is a good approximation
        if low.any():
            signal[low] = rng.poisson(lam[low]).astype(np.float32)
        np.minimum(signal, np.float32(full_well_e), out=signal)
        signal += rn * rng.standard_normal(lam.shape, dtype=np.float32)
    adu: NDArray[np.float32] = signal / np.float32(gain_e_per_adu) + np.float32(bias_adu)
    out: NDArray[np.uint16] = np.clip(np.rint(adu), 0, 65535).astype(np.uint16)
    return out
