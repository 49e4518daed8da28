"""GRB afterglow candidates: new sources in the alert's error circle, followed for fading.

A detection is a source inside the error circle that the catalogue does not explain: no star
within ``match_arcsec``, or a star fainter than the source by more than ``brighter_mag`` (plus
three errors). Detections of successive images within ``link_arcsec`` form one track; its
position is the error-weighted mean, its fading the slope of magnitude against log time since
the trigger (an afterglow fades as t^-alpha: slope 2.5 alpha > 0), fitted across filters with one
level per filter, so that a colour is never taken for a fading. The confidence grows with
the signal-to-noise, the fraction of covering images that detect it, and the fading's
significance; one detection alone never exceeds ``SINGLE_DETECTION_MAX``, two independent ones
(two images) are enough to report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from pyros_analyzer.domain.astrometry import project

F64 = NDArray[np.float64]
SINGLE_DETECTION_MAX = 0.6


@dataclass(frozen=True)
class ErrorCircle:
    ra_deg: float
    dec_deg: float
    radius_deg: float

    def contains(self, ra_deg: F64, dec_deg: F64) -> NDArray[np.bool_]:
        return separation_arcsec(ra_deg, dec_deg, self.ra_deg, self.dec_deg) <= self.radius_deg * 3600.0


def separation_arcsec(ra1: F64 | float, dec1: F64 | float, ra2: F64 | float, dec2: F64 | float) -> F64:
    r1, d1, r2, d2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (ra1, dec1, ra2, dec2))
    s = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    out: F64 = np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1)))) * 3600.0
    return out


@dataclass(frozen=True)
class Detection:
    """One measurement of a candidate in one image."""

    image: str
    taken_at: datetime  # mid-exposure
    ra_deg: float
    dec_deg: float
    pos_err_arcsec: float
    mag: float
    mag_err: float
    filter: str
    snr: float


def new_sources(
    ra_deg: F64,
    dec_deg: F64,
    mag: F64,
    mag_err: F64,
    snr: F64,
    pos_err_arcsec: F64,
    star_ra: F64,
    star_dec: F64,
    star_mag: F64,
    circle: ErrorCircle,
    *,
    image: str,
    taken_at: datetime,
    filter: str,
    min_snr: float = 8.0,
    match_arcsec: float = 2.0,
    brighter_mag: float = 0.75,
) -> list[Detection]:
    """Sources of one image in the circle that the catalogue does not account for."""
    inside = np.flatnonzero(circle.contains(ra_deg, dec_deg) & (snr >= min_snr) & np.isfinite(mag))
    out: list[Detection] = []
    if inside.size == 0:
        return out
    # nearest catalogue star of each source, on the tangent plane about the circle's centre
    sxi, seta = project(ra_deg[inside], dec_deg[inside], circle.ra_deg, circle.dec_deg)
    cxi, ceta = project(star_ra, star_dec, circle.ra_deg, circle.dec_deg)
    for k, i in enumerate(inside):
        if cxi.size:
            d = np.hypot(cxi - sxi[k], ceta - seta[k]) * 3600.0
            j = int(np.nanargmin(d))
            if d[j] <= match_arcsec and not mag[i] < star_mag[j] - brighter_mag - 3.0 * mag_err[i]:
                continue  # a known star, as bright as it should be
        out.append(
            Detection(
                image=image,
                taken_at=taken_at,
                ra_deg=float(ra_deg[i]),
                dec_deg=float(dec_deg[i]),
                pos_err_arcsec=float(pos_err_arcsec[i]),
                mag=float(mag[i]),
                mag_err=float(mag_err[i]),
                filter=filter,
                snr=float(snr[i]),
            )
        )
    return out


@dataclass
class Track:
    """A candidate: its detections across the sequence's images."""

    detections: list[Detection] = field(default_factory=list)
    covering_images: int = 0  # solved images whose field covers the track, detected or not

    @property
    def position(self) -> tuple[float, float, float]:
        """(ra, dec, 1-sigma error [arcsec]): the error-weighted mean of the detections."""
        d = self.detections
        w = np.array([1.0 / max(x.pos_err_arcsec, 0.01) ** 2 for x in d])
        ra = np.array([x.ra_deg for x in d])
        ra = d[0].ra_deg + ((ra - d[0].ra_deg + 180.0) % 360.0 - 180.0)
        dec = np.array([x.dec_deg for x in d])
        mra = float(np.sum(w * ra) / np.sum(w)) % 360.0
        mdec = float(np.sum(w * dec) / np.sum(w))
        err = 1.0 / math.sqrt(float(np.sum(w)))
        if len(d) > 1:  # scatter larger than the errors say: trust the scatter
            sep = separation_arcsec(ra, dec, mra, mdec)
            err = max(err, float(np.sqrt(np.sum(w * sep**2) / np.sum(w)) / math.sqrt(len(d) - 1)))
        return mra, mdec, err

    def fading(self, trigger: datetime) -> tuple[float, float]:
        """(slope of mag vs log10 t since trigger, its 1-sigma error), one slope for every filter,
        each filter its own level (colours differ); (0, inf) without two epochs in one filter."""
        sxy = sxx = 0.0
        for f in {x.filter for x in self.detections}:
            pts = [(x, (x.taken_at - trigger).total_seconds()) for x in self.detections if x.filter == f]
            pts = [(x, t) for x, t in pts if t > 0]
            if len(pts) < 2:
                continue
            lt = np.log10([t for _, t in pts])
            m = np.array([x.mag for x, _ in pts])
            w = 1.0 / np.square([max(x.mag_err, 0.01) for x, _ in pts])
            dl = lt - float(np.sum(w * lt) / np.sum(w))
            sxx += float(np.sum(w * dl**2))
            sxy += float(np.sum(w * dl * (m - float(np.sum(w * m) / np.sum(w)))))
        if sxx <= 0:
            return 0.0, math.inf
        return sxy / sxx, 1.0 / math.sqrt(sxx)

    def confidence(self, trigger: datetime) -> float:
        """In [0, 1]: signal-to-noise x persistence x (0.7 + 0.3 fading significance).

        Two images that both see a source the deep catalogue lacks (VIS and NIR at once, or two
        epochs) reach 0.7, above the default threshold: the first packet goes out on that; a
        significant fading raises it to 1. One image alone stays at ``SINGLE_DETECTION_MAX``."""
        if not self.detections:
            return 0.0
        snr = max(x.snr for x in self.detections)
        snr_term = min(1.0, max(0.0, (snr - 5.0) / 10.0))
        persistence = len({x.image for x in self.detections}) / max(
            self.covering_images, len(self.detections)
        )
        slope, err = self.fading(trigger)
        fade = min(1.0, max(0.0, slope / err / 3.0)) if math.isfinite(err) else 0.0
        c = snr_term * persistence * (0.7 + 0.3 * fade)
        return min(c, SINGLE_DETECTION_MAX) if len(self.detections) < 2 else c

    def latest(self) -> Detection:
        return max(self.detections, key=lambda x: x.taken_at)


def link(tracks: list[Track], found: Sequence[Detection], *, link_arcsec: float = 2.0) -> list[Track]:
    """Add one image's detections to the tracks (nearest within ``link_arcsec``), or start new ones."""
    for det in found:
        best: Track | None = None
        best_d = link_arcsec
        for tr in tracks:
            ra, dec, _ = tr.position
            d = float(separation_arcsec(det.ra_deg, det.dec_deg, ra, dec))
            if d <= best_d and det.image not in {x.image for x in tr.detections}:
                best, best_d = tr, d
        if best is None:
            best = Track()
            tracks.append(best)
        best.detections.append(det)
    return tracks


def update(
    tracks: list[Track],
    found: Sequence[Detection],
    covers: Callable[[float, float], bool],
    *,
    link_arcsec: float = 2.0,
) -> list[Track]:
    """One more solved image: count it for each track it covers, then link its detections."""
    before = len(tracks)
    for tr in tracks:
        if covers(*tr.position[:2]):
            tr.covering_images += 1
    link(tracks, found, link_arcsec=link_arcsec)
    for tr in tracks[before:]:
        tr.covering_images = 1
    return tracks
