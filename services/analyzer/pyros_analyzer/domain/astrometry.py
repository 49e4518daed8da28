"""Astrometry: the TAN projection, and a WCS solved by matching sources to catalogue stars.

The header WCS of a frame is where the mount *thinks* it points (a few arcminutes off, a
fraction of a degree in rotation). ``refine`` finds the true one: the catalogue is projected
with the header WCS, an offset is voted for over a grid of rotations (every source-star pair
votes for the shift that would superpose them; the true shift collects one vote per star
seen), then the pairs are matched and a linear map from pixels to the tangent plane is fitted
by least squares (similarity below six pairs, affine from six), the tangent point moved to the
fitted centre and the fit repeated, since a TAN projection about the wrong point is not linear.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


class SolveFailed(Exception):
    """No WCS could be found; ``reason`` says why (kept short: it goes into metrics labels)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def project(ra_deg: F64, dec_deg: F64, ra0_deg: float, dec0_deg: float) -> tuple[F64, F64]:
    """Gnomonic (TAN) standard coordinates (xi east, eta north) about (ra0, dec0) [deg]."""
    a, d = np.radians(ra_deg), np.radians(dec_deg)
    a0, d0 = math.radians(ra0_deg), math.radians(dec0_deg)
    da = a - a0
    cos_c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(da)
    xi = np.cos(d) * np.sin(da) / cos_c
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(da)) / cos_c
    behind = cos_c <= 0
    if np.any(behind):
        xi, eta = np.where(behind, np.nan, xi), np.where(behind, np.nan, eta)
    return np.degrees(xi), np.degrees(eta)


def deproject(xi_deg: F64, eta_deg: F64, ra0_deg: float, dec0_deg: float) -> tuple[F64, F64]:
    """Inverse of ``project``: (ra, dec) [deg] of standard coordinates about (ra0, dec0)."""
    xi, eta = np.radians(xi_deg), np.radians(eta_deg)
    d0 = math.radians(dec0_deg)
    den = math.cos(d0) - eta * math.sin(d0)
    ra = np.degrees(np.arctan2(xi, den)) + ra0_deg
    dec = np.degrees(np.arctan2(math.sin(d0) + eta * math.cos(d0), np.hypot(xi, den)))
    return ra % 360.0, dec


@dataclass(frozen=True)
class TanWcs:
    """A TAN WCS: tangent point ``crval`` [deg] at 0-based pixel ``crpix``, ``cd`` [deg/px]."""

    crval: tuple[float, float]
    crpix: tuple[float, float]
    cd: tuple[tuple[float, float], tuple[float, float]]

    @property
    def matrix(self) -> F64:
        return np.array(self.cd, dtype=np.float64)

    @property
    def scale_arcsec(self) -> float:
        return math.sqrt(abs(float(np.linalg.det(self.matrix)))) * 3600.0

    @property
    def parity(self) -> int:
        return -1 if float(np.linalg.det(self.matrix)) < 0 else 1

    def pix2world(self, x: F64, y: F64) -> tuple[F64, F64]:
        m = self.matrix
        dx, dy = (
            np.asarray(x, dtype=np.float64) - self.crpix[0],
            np.asarray(y, dtype=np.float64) - self.crpix[1],
        )
        return deproject(m[0, 0] * dx + m[0, 1] * dy, m[1, 0] * dx + m[1, 1] * dy, *self.crval)

    def world2pix(self, ra_deg: F64, dec_deg: F64) -> tuple[F64, F64]:
        xi, eta = project(
            np.asarray(ra_deg, dtype=np.float64), np.asarray(dec_deg, dtype=np.float64), *self.crval
        )
        inv = np.linalg.inv(self.matrix)
        return (
            inv[0, 0] * xi + inv[0, 1] * eta + self.crpix[0],
            inv[1, 0] * xi + inv[1, 1] * eta + self.crpix[1],
        )

    def cards(self) -> dict[str, Any]:
        """FITS keywords (1-based CRPIX)."""
        m = self.matrix
        return {
            "CTYPE1": "RA---TAN",
            "CTYPE2": "DEC--TAN",
            "CUNIT1": "deg",
            "CUNIT2": "deg",
            "CRVAL1": float(self.crval[0]),
            "CRVAL2": float(self.crval[1]),
            "CRPIX1": float(self.crpix[0]) + 1.0,
            "CRPIX2": float(self.crpix[1]) + 1.0,
            "CD1_1": float(m[0, 0]),
            "CD1_2": float(m[0, 1]),
            "CD2_1": float(m[1, 0]),
            "CD2_2": float(m[1, 1]),
            "RADESYS": "ICRS",
            "EQUINOX": 2000.0,
        }

    @classmethod
    def from_header(cls, h: Mapping[str, Any], key: str = "") -> TanWcs:
        """From FITS keywords (CD or CDELT/PC); ValueError when they are not a TAN WCS."""
        try:
            if not str(h[f"CTYPE1{key}"]).startswith("RA---TAN"):
                raise ValueError(f"CTYPE1{key} is {h[f'CTYPE1{key}']!r}, not RA---TAN")
            crval = (float(h[f"CRVAL1{key}"]), float(h[f"CRVAL2{key}"]))
            crpix = (float(h[f"CRPIX1{key}"]) - 1.0, float(h[f"CRPIX2{key}"]) - 1.0)
            if f"CD1_1{key}" in h:
                cd = (
                    (float(h[f"CD1_1{key}"]), float(h.get(f"CD1_2{key}", 0.0))),
                    (float(h.get(f"CD2_1{key}", 0.0)), float(h[f"CD2_2{key}"])),
                )
            else:
                c1, c2 = float(h[f"CDELT1{key}"]), float(h[f"CDELT2{key}"])
                pc = [
                    [float(h.get(f"PC{i}_{j}{key}", 1.0 if i == j else 0.0)) for j in (1, 2)] for i in (1, 2)
                ]
                cd = ((c1 * pc[0][0], c1 * pc[0][1]), (c2 * pc[1][0], c2 * pc[1][1]))
        except KeyError as exc:
            raise ValueError(f"no WCS in the header: {exc.args[0]} missing") from None
        return cls(crval, crpix, cd)


@dataclass(frozen=True)
class Solution:
    """A refined WCS and the source-star pairs it rests on."""

    wcs: TanWcs
    method: str
    n_matched: int
    rms_arcsec: float
    source_index: I64
    star_index: I64
    votes: int
    offset_px: tuple[float, float]  # from the header WCS to the solution, at the frame centre
    rotation_deg: float  # from the header WCS to the solution

    @property
    def uncertainty_arcsec(self) -> float:
        """1-sigma error of a position transformed through this WCS (fit noise over the pairs)."""
        free = 6 if self.n_matched >= 6 else 4
        return self.rms_arcsec * math.sqrt(free / max(self.n_matched, 1))


def _vote(
    sx: F64,
    sy: F64,
    cx: F64,
    cy: F64,
    centre: tuple[float, float],
    *,
    max_offset_px: float,
    max_rotation_deg: float,
    rotation_step_deg: float,
    bin_px: float,
) -> tuple[int, float, float, float]:
    """(votes, rotation, dx, dy) of the best shift over the rotation grid."""
    best = (0, 0.0, 0.0, 0.0)
    n_rot = max(1, round(2 * max_rotation_deg / rotation_step_deg) + 1)
    edges = np.arange(-max_offset_px, max_offset_px + bin_px, bin_px)
    for rot in np.linspace(-max_rotation_deg, max_rotation_deg, n_rot):
        c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
        px = centre[0] + c * (cx - centre[0]) - s * (cy - centre[1])
        py = centre[1] + s * (cx - centre[0]) + c * (cy - centre[1])
        dx = (sx[:, None] - px[None, :]).ravel()
        dy = (sy[:, None] - py[None, :]).ravel()
        near = (np.abs(dx) < max_offset_px) & (np.abs(dy) < max_offset_px)
        h, _, _ = np.histogram2d(dx[near], dy[near], bins=(edges, edges))
        h2 = h[:-1, :-1] + h[1:, :-1] + h[:-1, 1:] + h[1:, 1:]  # a peak split over bins counts whole
        i, j = np.unravel_index(int(np.argmax(h2)), h2.shape)
        votes = int(h2[i, j])
        if votes > best[0]:
            x0, y0 = edges[i], edges[j]
            sel = near & (dx >= x0) & (dx < x0 + 2 * bin_px) & (dy >= y0) & (dy < y0 + 2 * bin_px)
            best = (votes, float(rot), float(np.median(dx[sel])), float(np.median(dy[sel])))
    return best


def _nearest(px: F64, py: F64, sx: F64, sy: F64, radius_px: float) -> tuple[I64, I64]:
    """(star index, source index) of stars whose nearest source is within the radius, one-to-one."""
    from scipy.spatial import cKDTree

    if px.size == 0 or sx.size == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e
    d, j = cKDTree(np.column_stack([sx, sy])).query(np.column_stack([px, py]), distance_upper_bound=radius_px)
    ok = np.isfinite(d)
    stars, srcs, dist = np.flatnonzero(ok), j[ok].astype(np.int64), d[ok]
    order = np.argsort(dist)  # a source claimed by two stars goes to the closer one
    _, first = np.unique(srcs[order], return_index=True)
    keep = order[first]
    return stars[keep].astype(np.int64), srcs[keep]


def _fit(x: F64, y: F64, xi: F64, eta: F64, crpix: tuple[float, float], parity: int) -> F64:
    """2 x 3 matrix [[a, b, t], ...]: (xi, eta) = A @ (x - cx, y - cy, 1), similarity below 6 pairs."""
    dx, dy = x - crpix[0], y - crpix[1]
    if x.size >= 6:
        design = np.column_stack([dx, dy, np.ones_like(dx)])
        cx_, *_ = np.linalg.lstsq(design, xi, rcond=None)
        ce, *_ = np.linalg.lstsq(design, eta, rcond=None)
        return np.vstack([cx_, ce])
    # similarity: xi + i eta = z (p dx + i dy) + t, with the parity p of the header WCS
    u = parity * dx + 1j * dy
    design = np.column_stack([u, np.ones_like(u)])
    (z, t), *_ = np.linalg.lstsq(design, xi + 1j * eta, rcond=None)
    a, b = z.real, z.imag
    return np.array([[a * parity, -b, t.real], [b * parity, a, t.imag]])


def refine(
    sx: F64,
    sy: F64,
    s_flux: F64,
    star_ra: F64,
    star_dec: F64,
    star_mag: F64,
    guess: TanWcs,
    shape: tuple[int, int],
    *,
    max_offset_arcmin: float = 6.0,
    max_rotation_deg: float = 1.0,
    rotation_step_deg: float = 0.1,
    bin_px: float = 4.0,
    n_bright: int = 120,
    min_votes: int = 3,
    match_radius_arcsec: float = 1.5,
    iterations: int = 4,
) -> Solution:
    """The WCS of a frame from its sources and the catalogue stars around its header WCS."""
    ny, nx = shape
    if sx.size < min_votes:
        raise SolveFailed("too few sources", f"{sx.size} detected")
    if star_ra.size < min_votes:
        raise SolveFailed("too few catalogue stars", f"{star_ra.size} in the field")
    scale = guess.scale_arcsec
    max_off_px = max_offset_arcmin * 60.0 / scale
    px, py = guess.world2pix(star_ra, star_dec)
    near = (
        np.isfinite(px)
        & (px > -max_off_px)
        & (px < nx + max_off_px)
        & (py > -max_off_px)
        & (py < ny + max_off_px)
    )
    idx_star = np.flatnonzero(near)
    if idx_star.size < min_votes:
        raise SolveFailed("too few catalogue stars", f"{idx_star.size} near the field")
    bright_stars = idx_star[np.argsort(star_mag[idx_star])[: n_bright * 2]]
    bright_src = np.argsort(s_flux)[::-1][:n_bright]
    centre = ((nx - 1) / 2.0, (ny - 1) / 2.0)
    votes, rot, dx, dy = _vote(
        sx[bright_src],
        sy[bright_src],
        px[bright_stars],
        py[bright_stars],
        centre,
        max_offset_px=max_off_px,
        max_rotation_deg=max_rotation_deg,
        rotation_step_deg=rotation_step_deg,
        bin_px=bin_px,
    )
    if votes < min_votes:
        raise SolveFailed("no match", f"best offset has {votes} source-star pairs (need {min_votes})")
    # the voted similarity, as a first WCS: rotate the CD matrix and move the tangent point
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    rot_m = np.array([[c, -s], [s, c]])
    cd = guess.matrix @ np.linalg.inv(rot_m)
    cx0, cy0 = guess.crpix
    # pixel (x, y) now maps as the guess did at R^-1 (p - centre - d) + centre
    q = np.linalg.inv(rot_m) @ (np.array([cx0 - centre[0] - dx, cy0 - centre[1] - dy])) + np.array(centre)
    ra_c, dec_c = guess.pix2world(np.array([q[0]]), np.array([q[1]]))
    wcs = TanWcs((float(ra_c[0]), float(dec_c[0])), (cx0, cy0), ((cd[0, 0], cd[0, 1]), (cd[1, 0], cd[1, 1])))
    radius_px = max(3.0 * bin_px, 3.0)
    stars: NDArray[np.int64] = np.empty(0, dtype=np.int64)
    sources: NDArray[np.int64] = stars
    rms = float("nan")
    for it in range(iterations):
        px, py = wcs.world2pix(star_ra[idx_star], star_dec[idx_star])
        st, sources = _nearest(px, py, sx, sy, radius_px)
        stars = np.asarray(idx_star[st], dtype=np.int64)
        if stars.size < min_votes:
            raise SolveFailed("no match", f"{stars.size} pairs after the offset vote")
        for _clip in range(3):
            xi, eta = project(star_ra[stars], star_dec[stars], *wcs.crval)
            a = _fit(sx[sources], sy[sources], xi, eta, wcs.crpix, guess.parity)
            dxs, dys = sx[sources] - wcs.crpix[0], sy[sources] - wcs.crpix[1]
            rxi = a[0, 0] * dxs + a[0, 1] * dys + a[0, 2] - xi
            reta = a[1, 0] * dxs + a[1, 1] * dys + a[1, 2] - eta
            resid = np.hypot(rxi, reta) * 3600.0
            rms = float(np.sqrt(np.mean(resid**2)))
            keep = resid <= max(3.0 * rms, 0.3 * scale)
            if keep.all() or keep.sum() < min_votes:
                break
            stars, sources = stars[keep], sources[keep]
        new_crval = deproject(np.array([a[0, 2]]), np.array([a[1, 2]]), *wcs.crval)
        wcs = TanWcs(
            (float(new_crval[0][0]), float(new_crval[1][0])),
            wcs.crpix,
            ((float(a[0, 0]), float(a[0, 1])), (float(a[1, 0]), float(a[1, 1]))),
        )
        radius_px = max(match_radius_arcsec / scale, 3.0 * rms / scale) if it >= 1 else radius_px / 2
    # report the correction at the frame centre, in the header's pixels
    ra_m, dec_m = wcs.pix2world(np.array([centre[0]]), np.array([centre[1]]))
    gx, gy = guess.world2pix(ra_m, dec_m)
    rotation = math.degrees(
        math.atan2(wcs.cd[1][0], wcs.cd[1][1]) - math.atan2(guess.cd[1][0], guess.cd[1][1])
    )
    return Solution(
        wcs=wcs,
        method="catalogue-match",
        n_matched=int(stars.size),
        rms_arcsec=rms,
        source_index=sources,
        star_index=stars,
        votes=votes,
        offset_px=(float(centre[0] - gx[0]), float(centre[1] - gy[0])),
        rotation_deg=(rotation + 180.0) % 360.0 - 180.0,
    )
