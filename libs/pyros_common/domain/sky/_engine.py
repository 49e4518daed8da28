"""The numeric core of the sky: time scales, Earth orientation, Sun, Moon and target places.

Private to ``domain.sky``: ``night`` and ``visibility`` are its public faces. Astropy is used
only where it matters and only a few times per call: the IERS tables (UT1 - UTC), the
apparent sidereal time (one value per day, the sidereal rate in between) and the Sun and Moon
(a few dozen anchor times, interpolated); the rest is erfa and numpy.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar

import astropy.units as u
import erfa
import numpy as np
from astropy.time import Time, TimeDelta
from astropy.utils import iers
from astropy.utils.exceptions import AstropyWarning
from numpy.typing import ArrayLike, NDArray

from pyros_common._iers import configure_offline_iers
from pyros_common.domain.sky.sites import Site

configure_offline_iers()  # the shipped IERS tables, before any astropy time transform

FloatArray = NDArray[np.floating[Any]]
BoolArray = NDArray[np.bool_]

# Degrees of hour angle per SI second (UT1 ~ UTC within a night).
SIDEREAL_RATE_DEG_PER_S = 360.0 * 1.002737909350795 / 86400.0
_SUN_ANCHOR_S = 3600.0
_MOON_ANCHOR_S = 600.0


# --------------------------------------------------------------------------- time helpers

_P = ParamSpec("_P")
_R = TypeVar("_R")


def tolerant(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Silence astropy's warnings past the shipped IERS/leap-second tables (polar motion,
    UT1-UTC taken as 0, "dubious year"): arcseconds, irrelevant for altitude limits, but
    fatal under -W error."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with warnings.catch_warnings(), iers.conf.set_temp("iers_degraded_accuracy", "warn"):
            warnings.filterwarnings("ignore", message="Tried to get polar motions", category=AstropyWarning)
            warnings.filterwarnings("ignore", message=".*dubious year", category=erfa.ErfaWarning)
            warnings.filterwarnings("ignore", message=r"\(some\) times are outside of range covered by IERS")
            return fn(*args, **kwargs)

    return wrapper


def _utc(t: dt.datetime, what: str) -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {t.isoformat()}")
    return t.astimezone(dt.UTC)


@tolerant
def _times(ref: dt.datetime, seconds: FloatArray) -> Time:
    return Time(ref.replace(tzinfo=None), scale="utc") + TimeDelta(seconds, format="sec")


def _grid(span_s: float, step_s: float) -> FloatArray:
    if span_s <= 0:
        raise ValueError(f"end must be after start (span {span_s} s)")
    if step_s <= 0:
        raise ValueError(f"step_s must be > 0, got {step_s}")
    n = max(1, math.ceil(span_s / step_s - 1e-9))
    return np.linspace(0.0, span_s, n + 1)


def _anchors(seconds: FloatArray, step_s: float) -> FloatArray:
    lo, hi = float(seconds.min()), float(seconds.max())
    n = max(1, math.ceil((hi - lo) / step_s - 1e-9))
    return np.linspace(lo, lo + n * step_s, n + 1)


# --------------------------------------------------------------------------- geometry


def _unit(ra_deg: FloatArray, dec_deg: FloatArray) -> FloatArray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _radec(vec: FloatArray) -> tuple[FloatArray, FloatArray]:
    norm = np.linalg.norm(vec, axis=-1)
    ra = np.degrees(np.arctan2(vec[..., 1], vec[..., 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(vec[..., 2] / norm, -1.0, 1.0)))
    return ra, dec


def _interp_vectors(seconds: FloatArray, anchors: FloatArray, vec: FloatArray) -> FloatArray:
    out = np.stack([np.interp(seconds, anchors, vec[:, k]) for k in range(3)], axis=-1)
    unit: FloatArray = out / np.linalg.norm(out, axis=-1, keepdims=True)
    return unit


_C_AU_PER_DAY = 173.1446326846693
_AU_M = 1.495978707e11


@dataclass(frozen=True)
class _Earth:
    """Earth orientation and motion at anchor times (seconds after a reference)."""

    anchors: FloatArray  # (k,)
    gast_deg: FloatArray  # (k,) Greenwich apparent sidereal time
    pnm: FloatArray  # (k, 3, 3) GCRS -> true equator and equinox of date (TETE)
    sun_au: FloatArray  # (k, 3) geometric geocentric Sun, GCRS axes
    velocity_c: FloatArray  # (k, 3) Earth's barycentric velocity / c (annual aberration)
    tt: tuple[FloatArray, FloatArray]  # (k,) two-part TT Julian dates

    def index(self, seconds: FloatArray) -> NDArray[np.intp]:
        """The anchor at or before each time (the first one for earlier times)."""
        i = np.searchsorted(self.anchors, seconds, side="right") - 1
        return np.clip(i, 0, len(self.anchors) - 1)


def _quadratic(x: FloatArray, xp: FloatArray, rows: FloatArray) -> FloatArray:
    """Lagrange interpolation through three (3,)-vectors given at ``xp`` (3,), evaluated at ``x``."""
    x0, x1, x2 = (float(v) for v in xp)
    l0 = (x - x1) * (x - x2) / ((x0 - x1) * (x0 - x2))
    l1 = (x - x0) * (x - x2) / ((x1 - x0) * (x1 - x2))
    l2 = (x - x0) * (x - x1) / ((x2 - x0) * (x2 - x1))
    out: FloatArray = l0[:, None] * rows[0] + l1[:, None] * rows[1] + l2[:, None] * rows[2]
    return out


_EOP: tuple[Any, FloatArray, FloatArray] | None = None


def _dut1(utc1: FloatArray, utc2: FloatArray) -> FloatArray:
    """UT1 - UTC (s) from the Earth-orientation table, interpolated as astropy's Time does
    (linear, leap-second jumps removed, last values held outside the table)."""
    global _EOP
    table = iers.earth_orientation_table.get()
    if _EOP is None or _EOP[0] is not table:  # the table's columns as plain arrays, once
        _EOP = (table, np.asarray(table["MJD"].value, float), np.asarray(table["UT1_UTC"].to_value(u.s)))
    _, mjd_t, val_t = _EOP
    mjd = np.floor(utc1 - erfa.DJM0 + utc2)
    frac = utc1 - (erfa.DJM0 + mjd) + utc2
    i = np.searchsorted(mjd_t, mjd, side="right")
    i1 = np.clip(i, 1, len(mjd_t) - 1)
    i0 = i1 - 1
    d = val_t[i1] - val_t[i0]
    d -= np.round(d)
    out: FloatArray = val_t[i0] + (mjd - mjd_t[i0] + frac) / (mjd_t[i1] - mjd_t[i0]) * d
    out[i == 0] = val_t[0]
    out[i == len(mjd_t)] = val_t[-1]
    return out


def _tai_jd(ref: dt.datetime, seconds: FloatArray) -> tuple[float, FloatArray]:
    """Two-part TAI Julian dates of ``ref`` + ``seconds`` (SI seconds, as astropy's TimeDelta)."""
    sec = ref.second + ref.microsecond * 1e-6
    u1, u2 = erfa.dtf2d("UTC", ref.year, ref.month, ref.day, ref.hour, ref.minute, sec)
    t1, t2 = erfa.utctai(u1, u2)
    return float(t1), float(t2) + seconds / 86400.0


@tolerant
def _earth(ref: dt.datetime, anchors: FloatArray) -> _Earth:
    """Time scales straight from erfa (UTC -> TAI -> TT; UT1 from the IERS table, as astropy's
    Time does), then IAU 2006/2000A. The precession-nutation matrix and the equation of the
    origins change by < 0.1" a day: when the anchors span at most a day they are computed
    once, at the middle anchor, and GAST = ERA - EO follows the Earth rotation angle."""
    anchors = np.asarray(anchors, dtype=float)
    ref = ref.replace(tzinfo=None)
    tai1, tai2 = _tai_jd(ref, anchors)
    tai1a = np.full_like(tai2, tai1)
    tt1, tt2 = erfa.taitt(tai1a, tai2)
    utc1, utc2 = erfa.taiutc(tai1a, tai2)
    ut11, ut12 = erfa.utcut1(utc1, utc2, _dut1(utc1, utc2))
    if anchors.size > 2 and float(anchors[-1] - anchors[0]) <= 86400.0:
        # Within a day: nutation once; the Earth's orbit at three epochs, quadratic in between
        # (good to ~1e-7 au, a few hundredths of an arcsecond).
        m = anchors.size // 2
        pnm_m = erfa.pnm06a(tt1[m], tt2[m])
        x, y = erfa.bpn2xy(pnm_m)
        eo = erfa.eors(pnm_m, erfa.s06(tt1[m], tt2[m], x, y))
        gast = np.mod(erfa.era00(ut11, ut12) - eo, 2.0 * math.pi)
        pnm = np.broadcast_to(pnm_m, (anchors.size, 3, 3))
        e = np.array([0, m, anchors.size - 1])
        pvh3, pvb3 = erfa.epv00(tt1[e], tt2[e])  # TDB ~ TT: milliseconds don't matter here
        sun = _quadratic(anchors, anchors[e], -pvh3["p"])
        vel = _quadratic(anchors, anchors[e], pvb3["v"])
    else:
        gast = erfa.gst06a(ut11, ut12, tt1, tt2)
        pnm = erfa.pnm06a(tt1, tt2)
        pvh, pvb = erfa.epv00(tt1, tt2)
        sun, vel = -np.reshape(pvh["p"], (-1, 3)), np.reshape(pvb["v"], (-1, 3))
    return _Earth(
        anchors=anchors,
        gast_deg=np.degrees(np.atleast_1d(gast)),
        pnm=np.reshape(pnm, (-1, 3, 3)),
        sun_au=sun,
        velocity_c=vel / _C_AU_PER_DAY,
        tt=(np.atleast_1d(tt1), np.atleast_1d(tt2)),
    )


def _lst_deg(site: Site, ref: dt.datetime, seconds: FloatArray, earth: _Earth | None = None) -> FloatArray:
    """Local apparent sidereal time: erfa at the anchors, the sidereal rate in between."""
    if earth is None:
        earth = _earth(ref, _anchors(seconds, 86400.0))
    i = earth.index(seconds)
    lst: FloatArray = (
        earth.gast_deg[i] + site.lon_deg + SIDEREAL_RATE_DEG_PER_S * (seconds - earth.anchors[i])
    ) % 360.0
    return lst


def _aberrate(u_: FloatArray, v: FloatArray) -> FloatArray:
    """Annual aberration to first order (good to milliarcseconds): u + v - u (u.v)."""
    w = u_ + v - u_ * np.sum(u_ * v, axis=-1, keepdims=True)
    out: FloatArray = w / np.linalg.norm(w, axis=-1, keepdims=True)
    return out


def _to_tete(vec: FloatArray, pnm: FloatArray) -> FloatArray:
    """Rotate GCRS vectors (k, 3) by per-anchor matrices (k, 3, 3) or one matrix (3, 3)."""
    if pnm.ndim == 2:
        out: FloatArray = vec @ pnm.T
        return out
    out = np.einsum("kij,kj->ki", pnm, vec)
    return out


def _apparent(
    ra_deg: FloatArray, dec_deg: FloatArray, earth: _Earth, i: int
) -> tuple[FloatArray, FloatArray]:
    """ICRS -> apparent place, true equator and equinox of date (aberration, precession-nutation);
    gravitational deflection (< 0.01" away from the Sun) is neglected."""
    u_ = _aberrate(_unit(ra_deg, dec_deg), earth.velocity_c[i])
    return _radec(_to_tete(u_, earth.pnm[i]))


def _altitude(lat_deg: float, ra_deg: FloatArray, dec_deg: FloatArray, lst_deg: FloatArray) -> FloatArray:
    """Altitude (deg) of targets (n,) at sidereal times (t,) -> (n, t)."""
    lat = math.radians(lat_deg)
    dec = np.radians(dec_deg)
    a = (math.sin(lat) * np.sin(dec))[:, None]
    b = (math.cos(lat) * np.cos(dec))[:, None]
    ha = np.radians(lst_deg)[None, :] - np.radians(ra_deg)[:, None]
    s = np.cos(ha)
    s *= b
    s += a
    np.clip(s, -1.0, 1.0, out=s)
    alt: FloatArray = np.degrees(np.arcsin(s, out=s), out=s)
    return alt


def _body_altitude(
    lat_deg: float, ra_deg: FloatArray, dec_deg: FloatArray, lst_deg: FloatArray
) -> FloatArray:
    """Altitude (deg) of a moving body whose place (t,) is given at each sidereal time (t,)."""
    lat, ha, d = math.radians(lat_deg), np.radians(lst_deg - ra_deg), np.radians(dec_deg)
    s = math.sin(lat) * np.sin(d) + math.cos(lat) * np.cos(d) * np.cos(ha)
    alt: FloatArray = np.degrees(np.arcsin(np.clip(s, -1.0, 1.0)))
    return alt


def _sun_altitude(
    site: Site,
    ref: dt.datetime,
    seconds: FloatArray,
    anchor_s: float = _SUN_ANCHOR_S,
    earth: _Earth | None = None,
) -> FloatArray:
    """Apparent Sun altitude (deg) at ``seconds`` (Earth's heliocentric position from erfa)."""
    if earth is None:
        earth = _earth(ref, _anchors(seconds, anchor_s))
    sun = _to_tete(
        _aberrate(earth.sun_au / np.linalg.norm(earth.sun_au, axis=1)[:, None], earth.velocity_c), earth.pnm
    )
    ra, dec = _radec(_interp_vectors(seconds, earth.anchors, sun))
    return _body_altitude(site.lat_deg, ra, dec, _lst_deg(site, ref, seconds, earth))


@dataclass(frozen=True)
class _Moon:
    vec: FloatArray  # (t, 3) topocentric direction, TETE axes
    alt_deg: FloatArray  # (t,)
    illumination: FloatArray  # (t,) illuminated fraction 0..1


def _moon(site: Site, ref: dt.datetime, seconds: FloatArray, lst: FloatArray | None = None) -> _Moon:
    """The Moon from erfa.moon98 (astropy's built-in lunar ephemeris), topocentric."""
    earth = _earth(ref, _anchors(seconds, _MOON_ANCHOR_S))
    moon = np.reshape(erfa.moon98(*earth.tt)["p"], (-1, 3))  # au, GCRS, geocentric
    # phase angle at the Moon between the Sun and the Earth
    to_sun, to_earth = earth.sun_au - moon, -moon
    cos_i = np.sum(to_sun * to_earth, axis=1) / (
        np.linalg.norm(to_sun, axis=1) * np.linalg.norm(moon, axis=1)
    )
    illumination = (1.0 + cos_i) / 2.0
    x, y, z = erfa.gd2gc(1, math.radians(site.lon_deg), math.radians(site.lat_deg), site.height_m) / _AU_M
    g = np.radians(earth.gast_deg)
    observer = np.stack(
        [x * np.cos(g) - y * np.sin(g), x * np.sin(g) + y * np.cos(g), np.full_like(g, z)], axis=1
    )
    vec = _interp_vectors(seconds, earth.anchors, _to_tete(moon, earth.pnm) - observer)
    ra, dec = _radec(vec)
    if lst is None:
        lst = _lst_deg(site, ref, seconds)
    return _Moon(
        vec=vec,
        alt_deg=_body_altitude(site.lat_deg, ra, dec, lst),
        illumination=np.interp(seconds, earth.anchors, illumination),
    )


def _targets(ra_deg: ArrayLike, dec_deg: ArrayLike) -> tuple[FloatArray, FloatArray]:
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=float))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=float))
    if ra.ndim != 1 or ra.shape != dec.shape:
        raise ValueError(
            f"ra_deg and dec_deg must be 1-D and of equal length, got {ra.shape} and {dec.shape}"
        )
    if not np.all(np.isfinite(ra)) or not np.all(np.isfinite(dec)):
        raise ValueError("ra_deg and dec_deg must be finite")
    if np.any(np.abs(dec) > 90.0):
        raise ValueError("dec_deg must be within [-90, 90]")
    return ra % 360.0, dec


@dataclass(frozen=True)
class _NightSky:
    """What does not depend on the targets, on one time grid: computed once per night."""

    seconds: FloatArray  # (t,) since the reference
    earth: _Earth
    lst_deg: FloatArray  # (t,)
    basis: FloatArray  # (3, t): 1, cos LST, sin LST (sin alt = [a, b cos ra, b sin ra] @ basis)
    sun_alt_deg: FloatArray  # (t,)


_A = TypeVar("_A", bound=NDArray[Any])


def _frozen(a: _A) -> _A:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=32)
def _night_sky(site: Site, ref: dt.datetime, span_s: float, step_s: float) -> _NightSky:
    """Sidereal time and Sun on the grid of ``span_s`` after ``ref`` (cached: a scheduler
    asks for the same night many times; ``clear_night_cache`` empties it)."""
    seconds = _frozen(_grid(span_s, step_s))
    earth = _earth(ref, _anchors(seconds, _SUN_ANCHOR_S))
    lst = _lst_deg(site, ref, seconds, earth)
    sun = _sun_altitude(site, ref, seconds, earth=earth)
    lr = np.radians(lst)
    basis = np.stack([np.ones_like(lr), np.cos(lr), np.sin(lr)])
    return _NightSky(
        seconds=seconds,
        earth=earth,
        lst_deg=_frozen(lst),
        basis=_frozen(basis),
        sun_alt_deg=_frozen(sun),
    )


@lru_cache(maxsize=32)
def _night_moon(site: Site, ref: dt.datetime, span_s: float, step_s: float) -> _Moon:
    """The Moon on the same grid as ``_night_sky`` (cached likewise)."""
    sky = _night_sky(site, ref, span_s, step_s)
    return _moon(site, ref, sky.seconds, sky.lst_deg)


def clear_night_cache() -> None:
    """Forget the cached per-night sidereal time, Sun and Moon (they are recomputed on demand)."""
    _night_sky.cache_clear()
    _night_moon.cache_clear()


def _runs(seconds: FloatArray, margin: FloatArray) -> list[list[tuple[float, float]]]:
    """Per row, the intervals where margin >= 0, edges interpolated between samples."""
    return _runs_of(seconds, margin >= 0.0, lambda r, c: margin[r, c])


def _runs_of(
    seconds: FloatArray, ok: BoolArray, margin_at: Callable[[NDArray[np.intp], NDArray[np.intp]], FloatArray]
) -> list[list[tuple[float, float]]]:
    """Per row, the runs where ``ok``; the edges are interpolated linearly on the margin, which
    ``margin_at(rows, columns)`` gives at the few samples around each edge."""
    n, t = ok.shape
    # Edges between samples j and j + 1 (rows are contiguous: one pass over the flat mask,
    # dropping the pairs that straddle two rows), plus runs open at either end of a row.
    flat = ok.reshape(-1)
    e = np.flatnonzero(flat[1:] != flat[:-1])
    e = e[(e + 1) % t != 0]
    er, ec = np.divmod(e, t)
    up = flat[e + 1]
    r0 = np.flatnonzero(ok[:, 0])
    r1 = np.flatnonzero(ok[:, -1])
    rows = np.concatenate([r0, er[up]])
    first = np.concatenate([np.zeros(r0.size, dtype=np.intp), ec[up] + 1])
    o = np.lexsort((first, rows))
    rows, first = rows[o], first[o]  # first ok sample of each run
    rows_end = np.concatenate([er[~up], r1])
    last = np.concatenate([ec[~up], np.full(r1.size, t - 1, dtype=np.intp)])
    o = np.lexsort((last, rows_end))
    rows_end, last = rows_end[o], last[o]  # last ok sample of each run
    prev = np.maximum(first - 1, 0)
    nxt = np.minimum(last + 1, t - 1)
    m = margin_at(np.concatenate([rows, rows, rows_end, rows_end]), np.concatenate([prev, first, last, nxt]))
    g0, g1, h0, h1 = np.split(m, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(np.isfinite(g0) & np.isfinite(g1), g0 / (g0 - g1), 1.0)
        t_start = np.where(first == 0, seconds[0], seconds[prev] + (seconds[first] - seconds[prev]) * frac)
        frac_e = np.where(np.isfinite(h0) & np.isfinite(h1), h0 / (h0 - h1), 0.0)
        t_end = np.where(last == t - 1, seconds[-1], seconds[last] + (seconds[nxt] - seconds[last]) * frac_e)
    out: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    for r, a, b in zip(rows.tolist(), t_start.tolist(), t_end.tolist(), strict=True):
        out[r].append((a, b))
    return out
