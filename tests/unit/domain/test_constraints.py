"""Observing constraints: each formula on hand-made arrays, the base class's broadcasting and
caching, the horizon mask end to end, and windows as the intersection of each constraint's."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from pyros_common.domain.requests.model import SequenceConstraints
from pyros_common.domain.sky.constraints import (
    DEFAULT_MAX_AIRMASS,
    DEFAULT_MIN_ALTITUDE_DEG,
    AirmassConstraint,
    AltitudeConstraint,
    Constraint,
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
from pyros_common.domain.sky.night import night_bounds
from pyros_common.domain.sky.sites import SITES
from pyros_common.domain.sky.visibility import explain_invisible, visibility_windows, visibility_windows_s

SPM = SITES["gft-spm"]
# A wall from azimuth 60 to 120 (east), open elsewhere.
EAST_WALL = ((0.0, 0.0), (40.0, 0.0), (60.0, 60.0), (120.0, 60.0), (140.0, 0.0))
MASKED = dataclasses.replace(SPM, horizon=EAST_WALL)
DEC_NIGHT = dt.date(2024, 12, 21)


def targets(alt: Any, **kw: Any) -> Targets:
    a = np.asarray(alt, dtype=float)
    n, t = (1, a.shape[0]) if a.ndim == 1 else a.shape
    return Targets(n, t, altitude_deg=a, **kw)


# --------------------------------------------------------------------------- formulas


def test_altitude_margin_is_altitude_minus_the_limit() -> None:
    tg = targets([[10.0, 30.0, 50.0]])
    m = AltitudeConstraint(30.0)(Sky(), tg)
    np.testing.assert_array_equal(m, [[-20.0, 0.0, 20.0]])
    np.testing.assert_array_equal(AltitudeConstraint(30.0).holds(Sky(), tg), [[False, True, True]])


def test_airmass_is_an_altitude_limit_at_arcsin_of_one_over_the_airmass() -> None:
    tg = targets([[20.0, 29.9, 30.1, 90.0]])
    np.testing.assert_array_equal(AirmassConstraint(2.0).holds(Sky(), tg), [[False, False, True, True]])
    np.testing.assert_allclose(AirmassConstraint(2.0)(Sky(), tg), [[-10.0, -0.1, 0.1, 60.0]], atol=1e-12)
    # sec z = 1 / sin(alt): airmass 1 is the zenith only
    np.testing.assert_array_equal(AirmassConstraint(1.0)(Sky(), tg), [[-70.0, -60.1, -59.9, 0.0]])


def test_night_margin_is_the_night_altitude_minus_the_sun_for_every_target() -> None:
    sky = Sky(sun_altitude_deg=np.array([-10.0, -18.0, -30.0]))
    m = NightConstraint(-18.0)(sky, targets(np.zeros((2, 3))))
    np.testing.assert_array_equal(m, [[-8.0, 0.0, 12.0], [-8.0, 0.0, 12.0]])
    assert NightConstraint.of(SPM).max_sun_altitude_deg == SPM.night_sun_altitude_deg


def test_moon_separation_margin() -> None:
    tg = targets([[0.0, 0.0, 0.0]], moon_separation_deg=np.array([[10.0, 20.0, 40.0]]))
    np.testing.assert_array_equal(MoonSeparationConstraint(20.0)(Sky(), tg), [[-10.0, 0.0, 20.0]])


def test_a_bright_moon_only_hurts_while_it_is_up() -> None:
    sky = Sky(moon_illumination=np.array([0.3, 0.9, 0.9]), moon_altitude_deg=np.array([10.0, 10.0, -5.0]))
    tg = targets([[0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(MoonIlluminationConstraint(0.5)(sky, tg), [[np.inf, -10.0, 5.0]])
    np.testing.assert_array_equal(MoonIlluminationConstraint(0.5).holds(sky, tg), [[True, False, True]])


def test_horizon_mask_interpolates_in_azimuth_across_north() -> None:
    mask = HorizonMaskConstraint(((270.0, 10.0), (90.0, 40.0)))  # sorted on construction
    assert mask.profile == ((90.0, 40.0), (270.0, 10.0))
    tg = targets([[30.0, 30.0, 30.0, 30.0]], azimuth_deg=np.array([[90.0, 180.0, 270.0, 0.0]]))
    # floors 40, 25 (halfway), 10, 25 (halfway through north)
    np.testing.assert_array_equal(mask(Sky(), tg), [[-10.0, 5.0, 20.0, 5.0]])
    with pytest.raises(ValueError, match="azimuth 361"):
        HorizonMaskConstraint(((361.0, 0.0),))
    with pytest.raises(ValueError, match="at least one"):
        HorizonMaskConstraint(())


def test_a_boolean_formula_reads_as_infinite_margins() -> None:
    @dataclasses.dataclass(frozen=True, eq=False)
    class Even(Constraint):
        def compute(self, sky: Sky, targets: Targets) -> NDArray[Any]:
            return np.array([True, False, True])

    tg = targets(np.zeros((2, 3)))
    np.testing.assert_array_equal(Even()(Sky(), tg), [[np.inf, -np.inf, np.inf]] * 2)
    np.testing.assert_array_equal(Even().holds(Sky(), tg), [[True, False, True]] * 2)


# --------------------------------------------------------------------------- broadcasting


def test_one_target_given_as_a_time_series_is_one_row() -> None:
    m = AltitudeConstraint(30.0)(Sky(), targets([10.0, 40.0]))
    assert m.shape == (1, 2)
    np.testing.assert_array_equal(m, [[-20.0, 10.0]])


def test_a_scalar_limit_applies_to_every_target_an_array_one_each() -> None:
    tg = targets([[40.0, 40.0], [40.0, 40.0], [40.0, 40.0]])
    np.testing.assert_array_equal(AltitudeConstraint(30.0)(Sky(), tg), [[10.0, 10.0]] * 3)
    per_target = AltitudeConstraint(np.array([10.0, 30.0, 50.0]))
    np.testing.assert_array_equal(per_target(Sky(), tg), [[30.0, 30.0], [10.0, 10.0], [-10.0, -10.0]])
    # targets without the limit are unconstrained
    partial = MoonSeparationConstraint(np.array([50.0, 50.0, 50.0]), applies=np.array([True, False, True]))
    tg = targets(np.zeros((3, 2)), moon_separation_deg=np.full((3, 2), 20.0))
    np.testing.assert_array_equal(partial(Sky(), tg), [[-30.0, -30.0], [np.inf, np.inf], [-30.0, -30.0]])
    np.testing.assert_array_equal(partial.holds(Sky(), tg)[:, 0], [False, True, False])


def test_paired_samples_pick_each_targets_own_limit() -> None:
    alt = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    grid = targets(alt)
    sky = Sky(sun_altitude_deg=np.array([-20.0, -25.0, -30.0]))
    rows, cols = np.array([1, 0, 1]), np.array([0, 2, 2])
    per_target = AltitudeConstraint(np.array([5.0, 45.0]))
    paired = grid.take(rows, cols)
    assert paired.shape == (3,)
    np.testing.assert_array_equal(per_target(sky.take(cols), paired), [-5.0, 25.0, 15.0])
    np.testing.assert_array_equal(NightConstraint(-18.0)(sky.take(cols), paired), [2.0, 12.0, 12.0])
    # the same as the grid at those samples
    np.testing.assert_array_equal(margin([per_target], sky, grid)[rows, cols], [-5.0, 25.0, 15.0])


def test_stacked_bundles_give_each_target_its_own_limits() -> None:
    bundles = [
        Constraints(20.0, None),
        Constraints(40.0, 1.5, min_moon_separation_deg=10.0),
        Constraints(20.0, None),
    ]
    cons = stack(bundles, 3)
    alt = np.array([[25.0], [25.0], [45.0]])
    tg = targets(alt, moon_separation_deg=np.array([[5.0], [5.0], [5.0]]))
    got = margin(cons, Sky(), tg)[:, 0]
    want = [
        min(c(Sky(), targets(alt[k], moon_separation_deg=np.array([5.0])))[0, 0] for c in b.constraints())
        for k, b in enumerate(bundles)
    ]
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="2 constraints for 3 targets"):
        stack(bundles[:2], 3)


def test_holds_folds_altitude_limits_into_one_comparison_on_the_sine() -> None:
    alt = np.array([[20.0, 31.0, 50.0], [45.0, 55.0, 65.0]])
    sky = Sky(sun_altitude_deg=np.array([-20.0, -10.0, -20.0]))
    on_sine = Targets(2, 3, sin_altitude=np.sin(np.radians(alt)))
    cons = [NightConstraint(-18.0), AltitudeConstraint(30.0), AirmassConstraint(np.array([2.0, 1.25]))]
    want = [[False, False, True], [False, False, True]]  # airmass 1.25: above 53.13°
    np.testing.assert_array_equal(holds(cons, sky, on_sine), want)
    np.testing.assert_array_equal(holds(cons, sky, targets(alt)), want)
    np.testing.assert_array_equal(margin(cons, sky, targets(alt)) >= 0, want)


# --------------------------------------------------------------------------- caching


def test_each_result_and_each_quantity_is_computed_once() -> None:
    calls = {"compute": 0, "altitude": 0}

    @dataclasses.dataclass(frozen=True, eq=False)
    class Counting(AltitudeConstraint):
        def compute(self, sky: Sky, targets: Targets) -> NDArray[Any]:
            calls["compute"] += 1
            return super().compute(sky, targets)

    def altitude() -> NDArray[Any]:
        calls["altitude"] += 1
        return np.array([[10.0, 40.0]])

    sky, tg = Sky(), Targets(1, 2, altitude_deg=altitude)
    c = Counting(30.0)
    c(sky, tg)
    c(sky, tg)
    c.holds(sky, tg)
    assert calls == {"compute": 1, "altitude": 1}
    AirmassConstraint(2.0)(sky, tg)  # another constraint reads the same altitudes
    assert calls["altitude"] == 1
    c(sky, Targets(1, 2, altitude_deg=altitude))  # other targets: computed again
    assert calls == {"compute": 2, "altitude": 2}


# --------------------------------------------------------------------------- bundles and defaults


def test_one_set_of_defaults() -> None:
    assert (
        Constraints().min_altitude_deg == SequenceConstraints().min_altitude_deg == DEFAULT_MIN_ALTITUDE_DEG
    )
    assert Constraints().max_airmass == SequenceConstraints().max_airmass == DEFAULT_MAX_AIRMASS
    assert SequenceConstraints().to_visibility() == Constraints()


def test_a_bundle_lists_its_constraints_and_the_site_its_own() -> None:
    kinds = [type(c) for c in Constraints(30.0, 2.0, 15.0, 0.5).constraints(MASKED)]
    assert kinds == [
        NightConstraint,
        HorizonMaskConstraint,
        AltitudeConstraint,
        AirmassConstraint,
        MoonSeparationConstraint,
        MoonIlluminationConstraint,
    ]
    assert [type(c) for c in Constraints(30.0, None).constraints()] == [AltitudeConstraint]
    assert [type(c) for c in site_constraints(SPM)] == [NightConstraint]


# --------------------------------------------------------------------------- end to end


def test_a_horizon_mask_in_the_east_delays_a_rising_target() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    c = Constraints(min_altitude_deg=30.0, max_airmass=None)
    ((open_start, open_end),) = visibility_windows(SPM, [90.0], [10.0], c, start, end)[0]
    ((wall_start, wall_end),) = visibility_windows(MASKED, [90.0], [10.0], c, start, end)[0]
    assert open_start > start  # it rises during the night
    assert wall_start > open_start + dt.timedelta(hours=1)
    assert wall_end == open_end  # it sets in the west, where the horizon is open
    # astropy agrees that the target clears the wall there, and not 10 minutes earlier
    loc = EarthLocation.from_geodetic(SPM.lon_deg * u.deg, SPM.lat_deg * u.deg, SPM.height_m * u.m)
    when = [wall_start, wall_start - dt.timedelta(minutes=10)]
    altaz = SkyCoord(90.0 * u.deg, 10.0 * u.deg).transform_to(
        AltAz(obstime=Time([t.replace(tzinfo=None) for t in when]), location=loc)
    )
    floor = np.interp(altaz.az.deg, [p[0] for p in EAST_WALL], [p[1] for p in EAST_WALL], period=360.0)
    margins = altaz.alt.deg - np.maximum(floor, 30.0)
    assert abs(margins[0]) < 0.2 and margins[1] < -0.5


def test_explain_names_the_horizon() -> None:
    start, end = night_bounds(SPM, DEC_NIGHT)
    walled = dataclasses.replace(SPM, horizon=((0.0, 85.0),))
    reason = explain_invisible(walled, 90.0, 10.0, Constraints(30.0, None), start, end)
    assert reason == f"behind the horizon of {SPM.name} whenever the target is high enough"
    assert explain_invisible(SPM, 90.0, 10.0, Constraints(30.0, None), start, end) is None


Interval = tuple[float, float]


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if lo < hi:
                out.append((lo, hi))
    return out


def _inside(t: float, windows: list[Interval]) -> bool:
    return any(a <= t <= b for a, b in windows)


def _near_an_edge(t: float, windows: list[Interval], tol: float) -> bool:
    return any(abs(t - e) <= tol for w in windows for e in w)


@settings(max_examples=12, deadline=None)
@given(
    ra=st.floats(0.0, 359.9),
    sin_dec=st.floats(-0.6, 1.0),
    min_alt=st.floats(0.0, 60.0),
    airmass=st.floats(1.05, 3.0),
    moon_sep=st.floats(0.0, 90.0),
    illumination=st.floats(0.0, 1.0),
    night=st.sampled_from([dt.date(2024, 12, 21), dt.date(2025, 1, 13), dt.date(2025, 6, 20)]),
)
def test_windows_are_the_intersection_of_each_constraints_windows(
    ra: float,
    sin_dec: float,
    min_alt: float,
    airmass: float,
    moon_sep: float,
    illumination: float,
    night: dt.date,
) -> None:
    dec = float(np.degrees(np.arcsin(sin_dec)))
    start, end = night_bounds(SPM, night)
    step = 60.0
    alone = [
        (SPM, Constraints(min_alt, None)),
        (SPM, Constraints(-90.0, airmass)),
        (SPM, Constraints(-90.0, None, min_moon_separation_deg=moon_sep)),
        (SPM, Constraints(-90.0, None, max_moon_illumination=illumination)),
        (MASKED, Constraints(-90.0, None)),
    ]
    expected: list[Interval] = [(0.0, (end - start).total_seconds())]
    for site, c in alone:
        expected = _intersect(expected, visibility_windows_s(site, [ra], [dec], c, start, end, step)[0])
    every = Constraints(
        min_alt, airmass, min_moon_separation_deg=moon_sep, max_moon_illumination=illumination
    )
    got = visibility_windows_s(MASKED, [ra], [dec], every, start, end, step)[0]
    for t in np.arange(0.0, (end - start).total_seconds(), 17.0):
        if _near_an_edge(t, got + expected, step):
            continue
        assert _inside(t, got) == _inside(t, expected), (t, got, expected)
