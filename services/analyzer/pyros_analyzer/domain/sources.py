"""Source extraction with sep: background, detection, windowed centroids, aperture photometry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Sources:
    """Sources of one image, 0-based pixel positions, fluxes in ADU over the aperture."""

    x: F64
    y: F64
    flux: F64
    flux_err: F64
    peak: F64  # highest pixel above the background [ADU]
    hlr_px: F64  # half-light radius [px]
    background_rms: float
    aperture_px: float

    def __len__(self) -> int:
        return int(self.x.size)

    @property
    def snr(self) -> F64:
        return np.where(self.flux_err > 0, self.flux / np.maximum(self.flux_err, 1e-12), 0.0)

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> Sources:
        return Sources(
            self.x[index],
            self.y[index],
            self.flux[index],
            self.flux_err[index],
            self.peak[index],
            self.hlr_px[index],
            self.background_rms,
            self.aperture_px,
        )


def extract(
    data: NDArray[np.float32],
    *,
    threshold_sigma: float = 3.0,
    min_area_px: int = 5,
    gain_e_per_adu: float = 1.0,
    max_sources: int = 5000,
) -> Sources:
    """Detect sources ``threshold_sigma`` above the local background and measure them.

    The aperture radius is twice the median half-light radius of the well-measured sources,
    so it follows the seeing; centroids are sep's windowed positions (iterative, Gaussian
    window), much closer to the true centre than the isophotal barycentre on faint sources.
    """
    import sep

    img = np.ascontiguousarray(data, dtype=np.float32)
    bkg = sep.Background(img, bw=128, bh=128, fw=3, fh=3)
    sub = img - bkg.back()
    rms = float(bkg.globalrms)
    sep.set_extract_pixstack(2_000_000)
    objs = sep.extract(sub, threshold_sigma, err=rms, minarea=min_area_px, deblend_cont=0.005)
    if len(objs) > max_sources:  # keep the brightest: a crowded or broken frame cannot stall us
        objs = objs[np.argsort(objs["flux"])[::-1][:max_sources]]
    empty = np.empty(0)
    if len(objs) == 0:
        return Sources(empty, empty, empty, empty, empty, empty, rms, 0.0)
    x0, y0 = objs["x"].astype(np.float64), objs["y"].astype(np.float64)
    a = np.clip(objs["a"].astype(np.float64), 0.5, 20.0)
    hlr, _ = sep.flux_radius(sub, x0, y0, 6.0 * a, 0.5, subpix=5)
    good = np.isfinite(hlr) & (hlr > 0.3) & (objs["flag"] == 0)
    med_hlr = float(np.median(hlr[good])) if good.any() else 2.0
    sig = np.clip(2.0 / 2.3548 * hlr, 0.5, 10.0)
    x, y, _ = sep.winpos(sub, x0, y0, sig, subpix=5)
    bad = ~np.isfinite(x) | ~np.isfinite(y) | (np.hypot(x - x0, y - y0) > 3.0)
    x, y = np.where(bad, x0, x), np.where(bad, y0, y)
    r_ap = float(np.clip(2.0 * med_hlr, 2.0, 25.0))
    flux, flux_err, _ = sep.sum_circle(sub, x, y, r_ap, err=rms, gain=gain_e_per_adu, subpix=5)
    return Sources(
        np.asarray(x, dtype=np.float64),
        np.asarray(y, dtype=np.float64),
        np.asarray(flux, dtype=np.float64),
        np.asarray(flux_err, dtype=np.float64),
        objs["peak"].astype(np.float64),
        np.asarray(hlr, dtype=np.float64),
        rms,
        r_ap,
    )
