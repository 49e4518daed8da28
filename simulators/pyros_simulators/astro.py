"""Astropy-free pointing maths for the simulators (arcminute accuracy is plenty here).

Sidereal time from the IAU 1982 GMST polynomial and first-order precession; no nutation,
aberration or refraction:
the simulators only need to know roughly where the sky is, not to point a real mount.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

_J2000 = datetime(2000, 1, 1, 12, 0, tzinfo=UTC)


def gmst_deg(when: datetime) -> float:
    """Greenwich mean sidereal time at ``when`` (UTC ~ UT1) [deg]."""
    d = (when.astimezone(UTC) - _J2000).total_seconds() / 86400.0
    t = d / 36525.0
    return (280.46061837 + 360.98564736629 * d + 0.000387933 * t * t - t**3 / 38710000.0) % 360.0


def lst_deg(when: datetime, lon_deg: float) -> float:
    """Local mean sidereal time at east longitude ``lon_deg`` [deg]."""
    return (gmst_deg(when) + lon_deg) % 360.0


def precess(ra_deg: float, dec_deg: float, when: datetime, *, sign: float = 1.0) -> tuple[float, float]:
    """J2000 (ICRS) to mean equator of ``when`` to first order (``sign=-1``: the way back)."""
    years = sign * (when.astimezone(UTC) - _J2000).total_seconds() / (365.25 * 86400.0)
    m, n = 46.124 / 3600.0, 20.043 / 3600.0  # general precession in RA and Dec [deg/yr]
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    cos_dec = max(1e-9, abs(math.cos(dec)))
    d_ra = (m + n * math.sin(ra) * math.sin(dec) / cos_dec) * years
    d_dec = n * math.cos(ra) * years
    return (ra_deg + d_ra) % 360.0, max(-90.0, min(90.0, dec_deg + d_dec))


def radec_to_altaz(
    ra_deg: float, dec_deg: float, *, lat_deg: float, lon_deg: float, when: datetime
) -> tuple[float, float]:
    """(altitude, azimuth) [deg] of an ICRS position; azimuth from north through east."""
    ra_deg, dec_deg = precess(ra_deg, dec_deg, when)
    ha = math.radians(lst_deg(when, lon_deg) - ra_deg)
    dec, lat = math.radians(dec_deg), math.radians(lat_deg)
    sin_alt = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(ha)
    alt = math.asin(max(-1.0, min(1.0, sin_alt)))
    az = math.atan2(
        -math.cos(dec) * math.sin(ha),
        math.sin(dec) * math.cos(lat) - math.cos(dec) * math.sin(lat) * math.cos(ha),
    )
    return math.degrees(alt), math.degrees(az) % 360.0


def altaz_to_radec(
    alt_deg: float, az_deg: float, *, lat_deg: float, lon_deg: float, when: datetime
) -> tuple[float, float]:
    """(ra, dec) [deg], ICRS, of a horizontal position at ``when``."""
    alt, az, lat = math.radians(alt_deg), math.radians(az_deg), math.radians(lat_deg)
    sin_dec = math.sin(alt) * math.sin(lat) + math.cos(alt) * math.cos(lat) * math.cos(az)
    dec = math.asin(max(-1.0, min(1.0, sin_dec)))
    ha = math.atan2(
        -math.sin(az) * math.cos(alt),
        math.sin(alt) * math.cos(lat) - math.cos(alt) * math.sin(lat) * math.cos(az),
    )
    ra = (lst_deg(when, lon_deg) - math.degrees(ha)) % 360.0
    return precess(ra, math.degrees(dec), when, sign=-1.0)


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance between two equatorial positions [deg] (haversine, stable at small angles)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))
