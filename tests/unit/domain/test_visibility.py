import datetime as dt

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time
from hypothesis import given, settings
from hypothesis import strategies as st
from pyros_common.domain.sky.constraints import Constraints
from pyros_common.domain.sky.night import NoNight, night_bounds, resolve_night, tonight
from pyros_common.domain.sky.sites import SITES
from pyros_common.domain.sky.visibility import (
    altitude_deg,
    explain_invisible,
    visibility_windows,
    visibility_windows_s,
)

SPM = SITES["gft-spm"]
DEC_NIGHT = dt.date(2024, 12, 21)
UTC = dt.UTC


def test_night_bounds_december_at_spm() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    # astronomical twilight ~18:40 and ~06:10 local (UTC-7.7 h mean solar time), ~11 h of night
    assert dt.datetime(2024, 12, 22, 2, 0, tzinfo=UTC) < start < dt.datetime(2024, 12, 22, 2, 20, tzinfo=UTC)
    assert dt.datetime(2024, 12, 22, 13, 0, tzinfo=UTC) < end < dt.datetime(2024, 12, 22, 13, 20, tzinfo=UTC)
    assert start.tzinfo is not None


def test_sun_is_at_night_altitude_at_the_bounds() -> None:
    from astropy.coordinates import get_body

    start, end = night_bounds(SPM, DEC_NIGHT)
    loc = EarthLocation.from_geodetic(SPM.lon_deg * u.deg, SPM.lat_deg * u.deg, SPM.height_m * u.m)
    t = Time([start.replace(tzinfo=None), end.replace(tzinfo=None)])
    alt = get_body("sun", t, loc).transform_to(AltAz(obstime=t, location=loc)).alt.deg
    assert alt == pytest.approx([-18.0, -18.0], abs=0.02)


def test_no_night_in_high_latitude_summer() -> None:
    from pyros_common.domain.sky.sites import Site

    tromso = Site("tromso", lat_deg=69.65, lon_deg=18.96, height_m=0.0)
    with pytest.raises(NoNight, match="never goes below -18"):
        night_bounds(tromso, dt.date(2025, 6, 21))


def test_dec_minus_80_is_refused_below_30_all_night() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    reason = explain_invisible(SPM, 120.0, -80.0, Constraints(), start, end)
    assert reason is not None and reason.startswith("below 30° all night")
    assert visibility_windows(SPM, [120.0], [-80.0], Constraints(), start, end) == [[]]


def test_sets_early_rises_late_gives_two_windows() -> None:
    # Dec +87 at lower culmination around local midnight (RA ~ LST(midnight) - 180°)
    start, end = night_bounds(SPM, DEC_NIGHT)
    (windows,) = visibility_windows(SPM, [270.0], [87.0], Constraints(min_altitude_deg=30.0), start, end)
    assert len(windows) == 2
    (w1s, w1e), (w2s, w2e) = windows
    assert w1s == pytest.approx(start, abs=dt.timedelta(seconds=2))
    assert w2e == pytest.approx(end, abs=dt.timedelta(seconds=2))
    assert w1e < w2s
    # check the edges against the altitude itself
    alt = altitude_deg(SPM, [270.0], [87.0], [w1e, w2s, w1e + (w2s - w1e) / 2])[0]
    assert alt[:2] == pytest.approx([30.0, 30.0], abs=0.01)
    assert alt[2] < 30.0
    assert explain_invisible(SPM, 270.0, 87.0, Constraints(), start, end) is None


def test_windows_in_seconds_relative_to_reference() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    ref = start - dt.timedelta(hours=1)
    (w_dt,) = visibility_windows(SPM, [270.0], [87.0], Constraints(), start, end)
    (w_s,) = visibility_windows_s(SPM, [270.0], [87.0], Constraints(), start, end, reference=ref)
    assert len(w_s) == len(w_dt) == 2
    for (a, b), (ws, we) in zip(w_s, w_dt, strict=True):
        assert abs((ref + dt.timedelta(seconds=a) - ws).total_seconds()) < 1e-3
        assert abs((ref + dt.timedelta(seconds=b) - we).total_seconds()) < 1e-3
    assert w_s[0][0] == pytest.approx(3600.0, abs=2.0)


def test_min_duration_and_past() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    assert visibility_windows(SPM, [270.0], [87.0], Constraints(), start, end, min_duration_s=7200) == [[]]
    reason = explain_invisible(SPM, 270.0, 87.0, Constraints(), start, end, min_duration_s=7200)
    assert reason is not None and "less than the 120 min needed" in reason
    reason = explain_invisible(SPM, 270.0, 87.0, Constraints(), start, end, now=end - dt.timedelta(minutes=1))
    assert reason is None  # still a bit of the second window left
    reason = explain_invisible(SPM, 300.0, 87.0, Constraints(), start, end, now=end - dt.timedelta(hours=3))
    assert reason is not None and reason.startswith("only visible in the past")


def test_airmass_is_a_stricter_altitude() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    # Dec -30 culminates at 29°: above 20° for a while, never under airmass 1.5 (alt 41.8°)
    c = Constraints(min_altitude_deg=20.0, max_airmass=1.5)
    ra = 90.0  # transits near local midnight in December
    assert explain_invisible(SPM, ra, -30.0, c, start, end) == "airmass above 1.5 all night"
    no_airmass = Constraints(min_altitude_deg=20.0, max_airmass=None)  # the default airmass is 2 (30°)
    assert visibility_windows(SPM, [ra], [-30.0], no_airmass, start, end)[0]


def test_moon_constraints() -> None:
    # 2025-01-13: full Moon near RA 105°, Dec +26
    start, end = night_bounds(SPM, dt.date(2025, 1, 13))
    near = Constraints(min_moon_separation_deg=20.0)
    reason = explain_invisible(SPM, 105.0, 25.0, near, start, end)
    assert reason is not None and reason.startswith("Moon closer than 20°")
    assert visibility_windows(SPM, [105.0], [25.0], Constraints(), start, end)[0]
    dark = Constraints(max_moon_illumination=0.5)
    reason = explain_invisible(SPM, 105.0, 25.0, dark, start, end)
    assert reason is not None and reason.startswith("Moon brighter than 0.5")
    # per-target constraints: same target, only the second asks for a dark sky
    both = visibility_windows_s(SPM, [105.0, 105.0], [25.0, 25.0], [Constraints(), dark], start, end)
    assert both[0] and not both[1]


def test_input_errors_name_the_problem() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    with pytest.raises(ValueError, match="timezone-aware"):
        visibility_windows(SPM, [0.0], [0.0], Constraints(), start.replace(tzinfo=None), end)
    with pytest.raises(ValueError, match="end must be after start"):
        visibility_windows(SPM, [0.0], [0.0], Constraints(), end, start)
    with pytest.raises(ValueError, match="2 constraints for 1 targets"):
        visibility_windows(SPM, [0.0], [0.0], [Constraints(), Constraints()], start, end)
    with pytest.raises(ValueError, match="dec_deg"):
        visibility_windows(SPM, [0.0], [95.0], Constraints(), start, end)
    with pytest.raises(ValueError, match="max_airmass"):
        Constraints(max_airmass=0.5)


def test_tonight_and_date_resolution() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    afternoon = dt.datetime(2024, 12, 21, 22, 0, tzinfo=UTC)  # 14:20 local
    assert tonight(SPM, afternoon) == DEC_NIGHT
    assert tonight(SPM, start + dt.timedelta(hours=5)) == DEC_NIGHT  # in progress, after UTC midnight
    assert tonight(SPM, end + dt.timedelta(minutes=1)) == DEC_NIGHT + dt.timedelta(days=1)
    assert resolve_night(SPM, "tonight", afternoon) == DEC_NIGHT
    assert resolve_night(SPM, dt.date(2024, 12, 28), afternoon) == dt.date(2024, 12, 28)
    with pytest.raises(ValueError, match="8 nights ahead"):
        resolve_night(SPM, dt.date(2024, 12, 29), afternoon)
    with pytest.raises(ValueError, match="in the past"):
        resolve_night(SPM, dt.date(2024, 12, 20), afternoon)


@settings(max_examples=8, deadline=None)
@given(
    ra=st.lists(st.floats(0.0, 359.99), min_size=5, max_size=5),
    sin_dec=st.lists(st.floats(-1.0, 1.0), min_size=5, max_size=5),
    hours=st.floats(0.0, 24.0 * 600),
)
def test_altitude_agrees_with_astropy_altaz(ra: list[float], sin_dec: list[float], hours: float) -> None:
    dec = np.degrees(np.arcsin(sin_dec))
    t0 = dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(hours=hours)
    times = [t0 + dt.timedelta(hours=k) for k in range(0, 12, 3)]
    ours = altitude_deg(SPM, ra, dec, times)
    loc = EarthLocation.from_geodetic(SPM.lon_deg * u.deg, SPM.lat_deg * u.deg, SPM.height_m * u.m)
    t = Time([x.replace(tzinfo=None) for x in times])
    ref = SkyCoord(np.array(ra)[:, None] * u.deg, dec[:, None] * u.deg).transform_to(
        AltAz(obstime=t[None, :], location=loc)
    )
    assert ours.shape == (5, 4)
    np.testing.assert_allclose(ours, ref.alt.deg, atol=0.2)


def _windows_with_chunk(
    chunk: int, ra: object, dec: object, cons: Constraints | list[Constraints]
) -> list[list[tuple[float, float]]]:
    """December night windows at San Pedro Martir, ``chunk`` targets at a time."""
    import pyros_common.domain.sky.visibility as vis

    start, end = night_bounds(SPM, DEC_NIGHT)
    was = vis.CHUNK_TARGETS
    vis.CHUNK_TARGETS = chunk
    try:
        return visibility_windows_s(SPM, np.asarray(ra), np.asarray(dec), cons, start, end)
    finally:
        vis.CHUNK_TARGETS = was


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=60),
    chunk=st.integers(min_value=1, max_value=17),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_many_targets_are_taken_a_chunk_at_a_time_with_the_same_windows(
    n: int, chunk: int, seed: int
) -> None:
    """Targets split into chunks (one constraint bundle for all, or one each) get the windows
    they get in one pass; only the last bits of an interpolated edge may differ."""
    rng = np.random.default_rng(seed)
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-0.6, 1.0, n)))
    each = [Constraints(min_altitude_deg=float(a), max_airmass=None) for a in rng.uniform(10, 50, n)]
    cases: list[Constraints | list[Constraints]] = [Constraints(min_altitude_deg=30.0), each]
    for cons in cases:
        whole = _windows_with_chunk(10**9, ra, dec, cons)
        parts = _windows_with_chunk(chunk, ra, dec, cons)
        assert len(parts) == len(whole) == n
        for w, p in zip(whole, parts, strict=True):
            assert len(w) == len(p)
            assert np.allclose(np.asarray(w).reshape(-1), np.asarray(p).reshape(-1), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="constraints for"):
        _windows_with_chunk(1, [10.0, 20.0], [0.0, 0.0], each[:1])
