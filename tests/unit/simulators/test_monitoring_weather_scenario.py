"""The simulated clear night stays safe for the weather vote all night long (it drifted into
40 m/s winds before the walk was pulled back to its start values), and stays random."""

from __future__ import annotations

import datetime as dt

import pytest
from pyros_simulators.weather import WeatherScenario

START = dt.datetime(2026, 12, 16, 1, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_a_clear_night_stays_within_the_safe_limits_for_twelve_hours(seed: int) -> None:
    s = WeatherScenario(start=START, seed=seed)
    steps = [s.truth(START + dt.timedelta(seconds=10 * k)) for k in range(0, 12 * 360)]
    assert max(float(v["wind_ms"]) for v in steps) < 12.0
    assert max(float(v["humidity_pct"]) for v in steps) < 70.0
    assert max(float(v["sky_minus_ambient_c"]) for v in steps) < -20.0
    assert not any(v["rain"] for v in steps)
    assert len({round(float(v["wind_ms"]), 2) for v in steps}) > 100  # still a random walk


def test_without_the_pull_back_the_walk_wanders() -> None:
    free = WeatherScenario(start=START, seed=0, revert=0.0)
    winds = [float(free.truth(START + dt.timedelta(seconds=10 * k))["wind_ms"]) for k in range(0, 12 * 360)]
    assert max(winds) > 15.0
