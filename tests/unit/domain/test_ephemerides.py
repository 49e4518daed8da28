import datetime as dt

import astropy.units as u
import pytest
from astropy.coordinates import AltAz, EarthLocation, get_body
from astropy.time import Time
from pyros_common.domain.sky.ephemerides import PLANETS, night_ephemerides
from pyros_common.domain.sky.night import night_bounds
from pyros_common.domain.sky.sites import SITES

SPM = SITES["gft-spm"]


def _alt(body: str, when: dt.datetime) -> float:
    loc = EarthLocation.from_geodetic(SPM.lon_deg * u.deg, SPM.lat_deg * u.deg, SPM.height_m * u.m)
    t = Time(when.replace(tzinfo=None))
    return float(get_body(body, t, loc).transform_to(AltAz(obstime=t, location=loc)).alt.deg)


def test_december_night_at_spm() -> None:
    e = night_ephemerides(SPM, dt.date(2024, 12, 21))
    assert e.sunset is not None and e.sunrise is not None
    assert e.sunset < e.civil_dusk < e.nautical_dusk < e.astronomical_dusk  # type: ignore[operator]
    assert e.astronomical_dawn < e.nautical_dawn < e.civil_dawn < e.sunrise  # type: ignore[operator]
    dusk, dawn = night_bounds(SPM, dt.date(2024, 12, 21))
    assert e.astronomical_dusk is not None and e.astronomical_dawn is not None
    assert abs((e.astronomical_dusk - dusk).total_seconds()) < 5
    assert abs((e.astronomical_dawn - dawn).total_seconds()) < 5
    assert _alt("sun", e.sunset) == pytest.approx(-0.833, abs=0.05)
    assert _alt("sun", e.civil_dusk) == pytest.approx(-6.0, abs=0.05)  # type: ignore[arg-type]
    # last quarter on 2024-12-22: about half lit, rising near local midnight
    assert e.moon_illumination == pytest.approx(0.55, abs=0.1)
    assert e.moonrise is not None and _alt("moon", e.moonrise) == pytest.approx(-0.833, abs=0.1)
    assert [p.name for p in e.planets] == list(PLANETS)
    jupiter = next(p for p in e.planets if p.name == "jupiter")
    assert jupiter.max_altitude_deg == pytest.approx(90 - abs(31.04 - jupiter.dec_deg), abs=0.5)


def test_short_summer_night_at_ohp_has_all_twilights() -> None:
    e = night_ephemerides(SITES["ohp"], dt.date(2024, 6, 21))
    assert e.astronomical_dusk is not None and e.astronomical_dawn is not None
    hours = (e.astronomical_dawn - e.astronomical_dusk).total_seconds() / 3600
    assert 3.0 < hours < 5.0
