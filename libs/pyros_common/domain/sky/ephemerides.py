"""Ephemerides of one night at one site: Sun, twilights, Moon and planets.

Offline: astropy's built-in analytic ephemeris for the Sun, Moon and planets, and the IERS
tables shipped with pyros_common. Rise and set use the standard -0.833° horizon (refraction
plus semi-diameter) on geometric topocentric altitudes; times are good to about a minute.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import TETE, get_body

from pyros_common._iers import configure_offline_iers
from pyros_common.domain.sky._engine import (
    FloatArray,
    _body_altitude,
    _lst_deg,
    _moon,
    _sun_altitude,
    _times,
    tolerant,
)
from pyros_common.domain.sky.night import _crossings, _local_noon
from pyros_common.domain.sky.sites import Site

configure_offline_iers()  # the shipped IERS tables, before any astropy time transform

__all__ = ["PLANETS", "NightEphemerides", "PlanetEphemeris", "night_ephemerides"]

PLANETS = ("mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune")
RISE_SET_ALTITUDE_DEG = -0.833
CIVIL_DEG, NAUTICAL_DEG, ASTRONOMICAL_DEG = -6.0, -12.0, -18.0
_STEP_S = 60.0
_PLANET_STEP_S = 600.0


@dataclass(frozen=True)
class PlanetEphemeris:
    """A planet on one night: apparent place at midnight and its highest altitude at night."""

    name: str
    ra_deg: float  # geocentric, ICRS axes, at midnight
    dec_deg: float
    max_altitude_deg: float  # between sunset and sunrise


@dataclass(frozen=True)
class NightEphemerides:
    """The night starting on the local evening of ``night``. Times are UTC; an event that does
    not happen between local noon and the next local noon is None."""

    site: str
    night: dt.date
    sunset: dt.datetime | None
    sunrise: dt.datetime | None
    civil_dusk: dt.datetime | None
    civil_dawn: dt.datetime | None
    nautical_dusk: dt.datetime | None
    nautical_dawn: dt.datetime | None
    astronomical_dusk: dt.datetime | None
    astronomical_dawn: dt.datetime | None
    midnight: dt.datetime  # halfway between sunset and sunrise (local noon + 12 h without them)
    moonrise: dt.datetime | None
    moonset: dt.datetime | None
    moon_illumination: float  # illuminated fraction at midnight, 0..1
    moon_ra_deg: float  # geocentric, ICRS axes, at midnight
    moon_dec_deg: float
    planets: tuple[PlanetEphemeris, ...]


def _event(
    ref: dt.datetime, seconds: FloatArray, values: FloatArray, threshold: float
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """First downward crossing, then the first upward crossing after it."""
    cross = _crossings(seconds, values, threshold)
    downs = [t for t, rising in cross if not rising]
    down = downs[0] if downs else None
    ups = [t for t, rising in cross if rising and (down is None or t > down)]
    up = ups[0] if ups else None

    def at(s: float | None) -> dt.datetime | None:
        return None if s is None else ref + dt.timedelta(seconds=s)

    return at(down), at(up)


@tolerant
def night_ephemerides(site: Site, night: dt.date) -> NightEphemerides:
    """Sun, twilights, Moon and planets for the night starting on the evening of ``night``."""
    ref = _local_noon(site, night)
    seconds = np.arange(0.0, 86400.0 + _STEP_S, _STEP_S)
    sun = _sun_altitude(site, ref, seconds)
    sunset, sunrise = _event(ref, seconds, sun, RISE_SET_ALTITUDE_DEG)
    civil = _event(ref, seconds, sun, CIVIL_DEG)
    nautical = _event(ref, seconds, sun, NAUTICAL_DEG)
    astro = _event(ref, seconds, sun, ASTRONOMICAL_DEG)
    if sunset is not None and sunrise is not None:
        midnight = sunset + (sunrise - sunset) / 2
    else:
        midnight = ref + dt.timedelta(hours=12)

    lst = _lst_deg(site, ref, seconds)
    moon = _moon(site, ref, seconds, lst)
    moon_cross = _crossings(seconds, moon.alt_deg, RISE_SET_ALTITUDE_DEG)
    rises = [t for t, rising in moon_cross if rising]
    sets = [t for t, rising in moon_cross if not rising]
    mid_s = (midnight - ref).total_seconds()
    t_mid = _times(ref, np.array([mid_s]))
    moon_mid = get_body("moon", t_mid)

    # planets: one astropy call per planet over the dark hours, then our own altitudes
    lo = (sunset - ref).total_seconds() if sunset is not None else 0.0
    hi = (sunrise - ref).total_seconds() if sunrise is not None else 86400.0
    dark = np.linspace(lo, hi, max(2, int((hi - lo) // _PLANET_STEP_S) + 1))
    t_dark = _times(ref, dark)
    lst_dark = _lst_deg(site, ref, dark)
    planets = []
    for name in PLANETS:
        app = get_body(name, t_dark).transform_to(TETE(obstime=t_dark))
        alt = _body_altitude(site.lat_deg, np.asarray(app.ra.deg), np.asarray(app.dec.deg), lst_dark)
        at_mid = get_body(name, t_mid)
        planets.append(
            PlanetEphemeris(
                name=name,
                ra_deg=float(at_mid.ra.to_value(u.deg)[0]),
                dec_deg=float(at_mid.dec.to_value(u.deg)[0]),
                max_altitude_deg=float(alt.max()),
            )
        )
    return NightEphemerides(
        site=site.name,
        night=night,
        sunset=sunset,
        sunrise=sunrise,
        civil_dusk=civil[0],
        civil_dawn=civil[1],
        nautical_dusk=nautical[0],
        nautical_dawn=nautical[1],
        astronomical_dusk=astro[0],
        astronomical_dawn=astro[1],
        midnight=midnight,
        moonrise=ref + dt.timedelta(seconds=rises[0]) if rises else None,
        moonset=ref + dt.timedelta(seconds=sets[0]) if sets else None,
        moon_illumination=float(np.interp(mid_s, seconds, moon.illumination)),
        moon_ra_deg=float(moon_mid.ra.to_value(u.deg)[0]),
        moon_dec_deg=float(moon_mid.dec.to_value(u.deg)[0]),
        planets=tuple(planets),
    )
