"""Target visibility over a night, vectorised over targets x times.

The astronomy is done once per call by the numeric core (``sky._engine``): the apparent place
of the targets (aberration and precession-nutation, at mid-span), the apparent sidereal time
and the Sun and Moon on the time grid. Target altitudes are then plain spherical trigonometry
in numpy: sin(alt) = sin(lat) sin(dec) + cos(lat) cos(dec) cos(LST - ra). No refraction (as
astropy's AltAz with the default zero pressure); agreement with a full astropy AltAz
transform is a few arcseconds.

What must hold is a list of constraints (``sky.constraints``): the site's (night, horizon
mask) and each target's (altitude, airmass, Moon). Windows are the runs where every
constraint holds, with the edges interpolated linearly between grid samples on the smallest
margin. The Sun must be below ``site.night_sun_altitude_deg``, so windows are always inside
the night.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pyros_common.domain.sky._engine import (
    FloatArray,
    _altitude,
    _anchors,
    _apparent,
    _earth,
    _grid,
    _lst_deg,
    _Moon,
    _night_moon,
    _night_sky,
    _NightSky,
    _runs,
    _runs_of,
    _targets,
    _unit,
    _utc,
    clear_night_cache,
)
from pyros_common.domain.sky.constraints import (
    AirmassConstraint,
    AltitudeConstraint,
    Constraints,
    HorizonMaskConstraint,
    MoonIlluminationConstraint,
    MoonSeparationConstraint,
    NightConstraint,
    Sky,
    Targets,
    holds,
    margin,
    site_constraints,
    stack,
)
from pyros_common.domain.sky.sites import Site

__all__ = [
    "altitude_deg",
    "clear_night_cache",
    "explain_invisible",
    "visibility_windows",
    "visibility_windows_s",
]


def _azimuth(lat_deg: float, ra_deg: FloatArray, dec_deg: FloatArray, lst_deg: FloatArray) -> FloatArray:
    """Azimuth (deg, from north through east) of targets (n,) at sidereal times (t,) -> (n, t)."""
    lat = math.radians(lat_deg)
    dec = np.radians(dec_deg)[:, None]
    ha = np.radians(lst_deg)[None, :] - np.radians(ra_deg)[:, None]
    y = -np.cos(dec) * np.sin(ha)
    x = np.sin(dec) * math.cos(lat) - np.cos(dec) * np.cos(ha) * math.sin(lat)
    az: FloatArray = np.degrees(np.arctan2(y, x)) % 360.0
    return az


def _sky(site: Site, ref: dt.datetime, span_s: float, step_s: float) -> tuple[_NightSky, Sky]:
    """The night's grid and what the constraints read of it (the Moon only if one asks)."""
    ns = _night_sky(site, ref, span_s, step_s)

    def moon() -> _Moon:
        return _night_moon(site, ref, span_s, step_s)

    sky = Sky(
        sun_altitude_deg=ns.sun_alt_deg,
        moon_altitude_deg=lambda: moon().alt_deg,
        moon_illumination=lambda: moon().illumination,
    )
    return ns, sky


def _grid_targets(
    site: Site,
    ref: dt.datetime,
    span_s: float,
    step_s: float,
    ra_deg: ArrayLike,
    dec_deg: ArrayLike,
    *,
    sine_form: bool,
) -> Targets:
    """The targets' quantities on the night's grid, each computed only if a constraint asks.

    ``sine_form``: altitudes as sin(alt) from one (n, 3) @ (3, t) product (degrees derived
    only where asked); otherwise degrees from the hour-angle form.
    """
    ns = _night_sky(site, ref, span_s, step_s)
    ra, dec = _targets(ra_deg, dec_deg)
    ra_app, dec_app = _apparent(ra, dec, ns.earth, len(ns.earth.anchors) // 2)

    def sin_altitude() -> FloatArray:
        lat = math.radians(site.lat_deg)
        d, r = np.radians(dec_app), np.radians(ra_app)
        b = math.cos(lat) * np.cos(d)
        coef = np.stack([math.sin(lat) * np.sin(d), b * np.cos(r), b * np.sin(r)], axis=1)
        out: FloatArray = coef @ ns.basis
        return out

    def moon_separation() -> FloatArray:
        cos_sep = _unit(ra_app, dec_app) @ _night_moon(site, ref, span_s, step_s).vec.T
        out: FloatArray = np.degrees(np.arccos(np.clip(cos_sep, -1.0, 1.0)))
        return out

    return Targets(
        len(ra),
        len(ns.seconds),
        sin_altitude=sin_altitude if sine_form else None,
        altitude_deg=None if sine_form else (lambda: _altitude(site.lat_deg, ra_app, dec_app, ns.lst_deg)),
        azimuth_deg=lambda: _azimuth(site.lat_deg, ra_app, dec_app, ns.lst_deg),
        moon_separation_deg=moon_separation,
    )


CHUNK_TARGETS = 512  # targets per pass: a (targets x samples) array stays a few MB


def _windows(
    site: Site,
    ra_deg: ArrayLike,
    dec_deg: ArrayLike,
    constraints: Sequence[Constraints] | Constraints,
    ref: dt.datetime,
    span_s: float,
    step_s: float,
) -> list[list[tuple[float, float]]]:
    """Windows (seconds after ``ref``) without the full altitude grid in degrees: the altitude
    limits are tested on sin(alt) over the grid, margins in degrees are computed only at the
    samples around the edges, for the interpolated edges.

    Many targets are taken ``CHUNK_TARGETS`` at a time (each target's windows depend on it
    alone): the grids of 10,000 targets at once are hundreds of MB of fresh pages, whose
    faults made the time of one call vary twofold from run to run.
    """
    ra, dec = _targets(ra_deg, dec_deg)
    if len(ra) <= CHUNK_TARGETS:
        return _windows_of(site, ra, dec, constraints, ref, span_s, step_s)
    per = constraints if isinstance(constraints, Constraints) else list(constraints)
    if not isinstance(per, Constraints) and len(per) != len(ra):
        raise ValueError(f"got {len(per)} constraints for {len(ra)} targets")
    out: list[list[tuple[float, float]]] = []
    for a in range(0, len(ra), CHUNK_TARGETS):
        b = a + CHUNK_TARGETS
        part = per if isinstance(per, Constraints) else per[a:b]
        out += _windows_of(site, ra[a:b], dec[a:b], part, ref, span_s, step_s)
    return out


def _windows_of(
    site: Site,
    ra_deg: ArrayLike,
    dec_deg: ArrayLike,
    constraints: Sequence[Constraints] | Constraints,
    ref: dt.datetime,
    span_s: float,
    step_s: float,
) -> list[list[tuple[float, float]]]:
    ns, sky = _sky(site, ref, span_s, step_s)
    tg = _grid_targets(site, ref, span_s, step_s, ra_deg, dec_deg, sine_form=True)
    cons = site_constraints(site) + stack(constraints, tg.n_targets)
    ok = holds(cons, sky, tg)

    def margin_at(r: NDArray[np.intp], c: NDArray[np.intp]) -> FloatArray:
        return margin(cons, sky.take(c), tg.take(r, c))

    return _runs_of(ns.seconds, ok, margin_at)


# --------------------------------------------------------------------------- public API


def altitude_deg(
    site: Site, ra_deg: ArrayLike, dec_deg: ArrayLike, times: Sequence[dt.datetime]
) -> FloatArray:
    """Geometric altitude (deg, no refraction) of ICRS targets at ``times``: shape (n_targets, n_times)."""
    if len(times) == 0:
        raise ValueError("times is empty")
    utc = [_utc(t, "times") for t in times]
    ref = min(utc)
    seconds = np.array([(t - ref).total_seconds() for t in utc])
    ra, dec = _targets(ra_deg, dec_deg)
    earth = _earth(ref, _anchors(seconds, 86400.0))
    ra_app, dec_app = _apparent(ra, dec, earth, len(earth.anchors) // 2)
    return _altitude(site.lat_deg, ra_app, dec_app, _lst_deg(site, ref, seconds, earth))


def visibility_windows_s(
    site: Site,
    ra_deg: ArrayLike,
    dec_deg: ArrayLike,
    constraints: Sequence[Constraints] | Constraints,
    start: dt.datetime,
    end: dt.datetime,
    step_s: float = 60.0,
    min_duration_s: float = 0.0,
    reference: dt.datetime | None = None,
) -> list[list[tuple[float, float]]]:
    """Per target, every window (seconds after ``reference``, default ``start``) where all
    constraints hold and the Sun is below the site's night altitude, within [start, end]."""
    start, end = _utc(start, "start"), _utc(end, "end")
    ref = start if reference is None else _utc(reference, "reference")
    span_s = (end - start).total_seconds()
    _grid(span_s, step_s)  # argument checks
    runs = _windows(site, ra_deg, dec_deg, constraints, start, span_s, float(step_s))
    shift = (start - ref).total_seconds()
    if shift == 0.0 and min_duration_s <= 0.0:
        return runs
    return [[(a + shift, b + shift) for a, b in r if b - a >= min_duration_s] for r in runs]


def visibility_windows(
    site: Site,
    ra_deg: ArrayLike,
    dec_deg: ArrayLike,
    constraints: Sequence[Constraints] | Constraints,
    start: dt.datetime,
    end: dt.datetime,
    step_s: float = 60.0,
    min_duration_s: float = 0.0,
) -> list[list[tuple[dt.datetime, dt.datetime]]]:
    """Per target, every (start, end) UTC window where all constraints hold at night."""
    start = _utc(start, "start")
    windows = visibility_windows_s(site, ra_deg, dec_deg, constraints, start, end, step_s, min_duration_s)
    return [
        [(start + dt.timedelta(seconds=a), start + dt.timedelta(seconds=b)) for a, b in runs]
        for runs in windows
    ]


def explain_invisible(
    site: Site,
    ra_deg: float,
    dec_deg: float,
    constraints: Constraints,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime | None = None,
    step_s: float = 60.0,
    min_duration_s: float = 0.0,
) -> str | None:
    """Why one target cannot be observed between ``start`` and ``end``; None if it can.

    Constraints are checked in order (night, altitude, airmass, horizon mask, Moon distance,
    Moon brightness, duration, ``now``) and the first one that leaves no time is named.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    span_s = (end - start).total_seconds()
    _grid(span_s, step_s)  # argument checks
    ns, sky = _sky(site, start, span_s, float(step_s))
    tg = _grid_targets(site, start, span_s, float(step_s), [ra_deg], [dec_deg], sine_form=False)
    cons = site_constraints(site) + constraints.constraints()

    def first(kind: type) -> Callable[[], NDArray[np.bool_]] | None:
        c = next((c for c in cons if isinstance(c, kind)), None)
        return None if c is None else (lambda: c.holds(sky, tg)[0])

    night_holds = first(NightConstraint)
    assert night_holds is not None
    night = night_holds()
    if not night.any():
        return f"no astronomical night (Sun below {site.night_sun_altitude_deg:g}°) in the interval"
    alt_holds = first(AltitudeConstraint)
    assert alt_holds is not None
    ok = night & alt_holds()
    if not ok.any():
        highest = float(tg.altitude_deg[0][night].max())
        return f"below {constraints.min_altitude_deg:g}° all night (highest {highest:.1f}°)"
    checks: list[tuple[type, Callable[[NDArray[np.bool_]], str]]] = [
        (AirmassConstraint, lambda _: f"airmass above {constraints.max_airmass:g} all night"),
        (
            HorizonMaskConstraint,
            lambda _: f"behind the horizon of {site.name} whenever the target is high enough",
        ),
        (
            MoonSeparationConstraint,
            lambda before: (
                f"Moon closer than {constraints.min_moon_separation_deg:g}° whenever the target is high "
                f"enough (at best {float(tg.moon_separation_deg[0][before].max()):.1f}°)"
            ),
        ),
        (
            MoonIlluminationConstraint,
            lambda _: (
                f"Moon brighter than {constraints.max_moon_illumination:g} illuminated and above the "
                "horizon whenever the target is observable"
            ),
        ),
    ]
    for kind, reason in checks:
        h = first(kind)
        if h is None:
            continue
        before, ok = ok, ok & h()
        if not ok.any():
            return reason(before)
    runs = _runs(ns.seconds, margin(cons, sky, tg))[0]
    long_enough = [(a, b) for a, b in runs if b - a >= min_duration_s]
    if not long_enough:
        longest = max((b - a for a, b in runs), default=0.0)
        return f"visible at most {longest / 60:.0f} min, less than the {min_duration_s / 60:.0f} min needed"
    if now is not None:
        now_s = (_utc(now, "now") - start).total_seconds()
        if all(b <= now_s for _, b in long_enough):
            last = start + dt.timedelta(seconds=long_enough[-1][1])
            return f"only visible in the past (last window ended {last:%Y-%m-%d %H:%M} UTC)"
    return None
