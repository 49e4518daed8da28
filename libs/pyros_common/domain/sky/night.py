"""The night of a site: when it starts and ends, which night is tonight, how much night a
span of nights holds.

A night is named by the date of its local evening and lasts while the Sun is below the
site's ``night_sun_altitude_deg`` (astronomical night by default).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Literal

import numpy as np

from pyros_common.domain.requests.model import MAX_NIGHTS_AHEAD
from pyros_common.domain.sky._engine import FloatArray, _sun_altitude, _utc
from pyros_common.domain.sky.sites import Site

__all__ = ["NoNight", "night_bounds", "night_time_s", "resolve_night", "tonight"]

_NIGHT_STEP_S = 30.0


class NoNight(ValueError):
    """The Sun never goes below the site's night altitude (high-latitude summer)."""


def _local_noon(site: Site, night: dt.date) -> dt.datetime:
    """Mean local noon of ``night`` (UTC), from the longitude: good enough to bracket a night."""
    noon = dt.datetime(night.year, night.month, night.day, 12, tzinfo=dt.UTC)
    return noon - dt.timedelta(hours=site.lon_deg / 15.0)


def _crossings(seconds: FloatArray, values: FloatArray, threshold: float) -> list[tuple[float, bool]]:
    """Times where ``values`` crosses ``threshold`` (linear interpolation) and whether it rises."""
    above = values >= threshold
    idx = np.nonzero(above[1:] != above[:-1])[0]
    out: list[tuple[float, bool]] = []
    for i in idx.tolist():
        v0, v1 = float(values[i]) - threshold, float(values[i + 1]) - threshold
        t = float(seconds[i]) + (float(seconds[i + 1]) - float(seconds[i])) * (v0 / (v0 - v1))
        out.append((t, bool(above[i + 1])))
    return out


@lru_cache(maxsize=4096)
def night_bounds(site: Site, night: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The night starting on the local evening of ``night``: (dusk, dawn) in UTC, where the
    Sun crosses ``site.night_sun_altitude_deg``. Raises NoNight if it never gets that low."""
    ref = _local_noon(site, night)
    seconds = np.arange(0.0, 86400.0 + _NIGHT_STEP_S, _NIGHT_STEP_S)
    sun = _sun_altitude(site, ref, seconds)
    thr = site.night_sun_altitude_deg
    cross = _crossings(seconds, sun, thr)
    if sun[0] < thr:  # polar winter: already night at noon
        dusk = 0.0
    else:
        downs = [t for t, rising in cross if not rising]
        if not downs:
            raise NoNight(f"the Sun never goes below {thr:g}° at {site.name} on the night of {night}")
        dusk = downs[0]
    ups = [t for t, rising in cross if rising and t > dusk]
    dawn = ups[0] if ups else float(seconds[-1])
    return ref + dt.timedelta(seconds=dusk), ref + dt.timedelta(seconds=dawn)


@lru_cache(maxsize=256)
def night_time_s(site: Site, first_night: dt.date, last_night: dt.date) -> float:
    """Total astronomical night (s) of the nights starting on ``first_night`` .. ``last_night``
    (inclusive), from one Sun computation at one-minute resolution."""
    if last_night < first_night:
        raise ValueError(f"last_night {last_night} is before first_night {first_night}")
    ref = _local_noon(site, first_night)
    days = (last_night - first_night).days + 1
    seconds = np.arange(0.0, days * 86400.0 + 60.0, 60.0)
    m = site.night_sun_altitude_deg - _sun_altitude(site, ref, seconds, anchor_s=86400.0)
    m0, m1 = m[:-1], m[1:]
    dt_s = np.diff(seconds)
    both = (m0 >= 0) & (m1 >= 0)
    mixed = (m0 >= 0) != (m1 >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        part = np.where(mixed, np.maximum(m0, m1) / np.abs(m0 - m1), 0.0)
    return float(np.sum(dt_s * np.where(both, 1.0, part)))


def tonight(site: Site, now: dt.datetime) -> dt.date:
    """The night in progress at ``now``, or the next one if it is daytime."""
    now = _utc(now, "now")
    local = now + dt.timedelta(hours=site.lon_deg / 15.0) - dt.timedelta(hours=12)
    night = local.date()
    _, dawn = night_bounds(site, night)
    return night if now < dawn else night + dt.timedelta(days=1)


def resolve_night(
    site: Site, date: dt.date | Literal["tonight"], now: dt.datetime, max_nights_ahead: int = MAX_NIGHTS_AHEAD
) -> dt.date:
    """The night a sequence's ``date`` means at ``now``; ValueError if past or too far ahead."""
    current = tonight(site, now)
    if date == "tonight":
        return current
    if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
        raise ValueError(f"date must be 'tonight' or a date, got {date!r}")
    if date < current:
        raise ValueError(f"date {date} is in the past (tonight is the night of {current})")
    if (date - current).days > max_nights_ahead:
        raise ValueError(
            f"date {date} is {(date - current).days} nights ahead; at most {max_nights_ahead} allowed"
        )
    return date
