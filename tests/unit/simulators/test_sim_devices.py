"""Simulators on a SimulatedClock: slew times, horizon limit, atomic FITS, filter wheel, dome, weather."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from astropy.io import fits
from pyros_common.clock import SimulatedClock
from pyros_common.domain.sky.sites import get_site
from pyros_simulators import (
    NIR,
    VIS,
    Aborted,
    BelowHorizon,
    Camera,
    DeviceFault,
    Dome,
    ExposureRequest,
    FilterWheel,
    ScriptedEvent,
    SimulatorError,
    Telescope,
    TelescopeConfig,
    WeatherScenario,
    rain_after,
    weather_sources,
)
from pyros_simulators.astro import altaz_to_radec, separation_deg

T = TypeVar("T")
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)  # 22:18 local mean time at San Pedro Mártir
SITE = get_site("gft-spm")


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


def radec_at(alt: float, az: float, clock: SimulatedClock) -> tuple[float, float]:
    return altaz_to_radec(alt, az, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=clock.now())


async def spin(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def drive(clock: SimulatedClock, work: Coroutine[Any, Any, T], step_s: float = 0.5) -> T:
    """Run ``work`` while advancing simulated time (real time only for file writes)."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.sleep(0.001)
        clock.advance(step_s)
    return task.result()


# --- telescope ------------------------------------------------------------------------


async def test_slew_takes_distance_over_rate_plus_settle(clock: SimulatedClock) -> None:
    tel = Telescope(clock, SITE, TelescopeConfig(slew_rate_deg_s=2.0, settle_s=3.0))
    ra, dec = radec_at(60.0, 180.0, clock)
    ra0, dec0 = tel.position
    expected = separation_deg(ra0, dec0, ra, dec) / 2.0 + 3.0
    assert tel.slew_time_s(ra, dec) == pytest.approx(expected)
    assert expected > 10  # from the zenith park to 60 deg altitude: 15 s + settle

    task = asyncio.create_task(tel.slew(ra, dec))
    await spin()
    assert tel.state == "slewing"
    clock.advance(expected - 0.5)
    await spin()
    assert not task.done() and tel.state == "slewing"
    clock.advance(0.5)
    await task
    assert tel.state == "idle"
    assert tel.position == (ra, dec)
    assert tel.altaz[0] == pytest.approx(60.0, abs=0.01)


async def test_slew_below_horizon_limit_is_refused_with_a_clear_error(clock: SimulatedClock) -> None:
    tel = Telescope(clock, SITE)
    ra, dec = radec_at(10.0, 90.0, clock)
    with pytest.raises(BelowHorizon, match=r"altitude 10\.0 deg .*below the horizon limit of 15\.0 deg"):
        await tel.slew(ra, dec)
    assert tel.state == "parked" and tel.commands_run == 0
    ok_ra, ok_dec = radec_at(16.0, 90.0, clock)
    await drive(clock, tel.slew(ok_ra, ok_dec))
    assert tel.state == "idle"


async def test_abort_stops_a_slew_part_way(clock: SimulatedClock) -> None:
    tel = Telescope(clock, SITE, TelescopeConfig(slew_rate_deg_s=1.0, settle_s=0.0))
    ra, dec = radec_at(50.0, 180.0, clock)
    task = asyncio.create_task(tel.slew(ra, dec))
    await spin()
    clock.advance(10.0)
    await tel.abort()
    with pytest.raises(Aborted):
        await task
    assert tel.state == "idle"
    assert 0 < separation_deg(*tel.position, ra, dec) < 40.0


async def test_park_and_injected_fault(clock: SimulatedClock) -> None:
    tel = Telescope(clock, SITE)
    ra, dec = radec_at(45.0, 200.0, clock)
    await drive(clock, tel.slew(ra, dec))
    tel.inject_fault("axis 1 motor stalled")
    with pytest.raises(DeviceFault, match="motor stalled"):
        await tel.slew(*radec_at(50.0, 200.0, clock))
    assert tel.state == "error" and "stalled" in tel.error
    tel.clear_faults()
    await drive(clock, tel.park())
    assert tel.state == "parked" and tel.altaz == (90.0, 0.0)
    tel.set_offline()
    with pytest.raises(SimulatorError, match="offline"):
        await tel.park()


# --- cameras --------------------------------------------------------------------------


SMALL_VIS = dataclasses.replace(VIS, shape=(512, 512), vignetting=0.0, prnu=0.0)


async def test_expose_writes_fits_atomically_with_headers(clock: SimulatedClock, tmp_path: Path) -> None:
    cam = Camera(clock, SMALL_VIS)  # no site: a dark sky (no Sun, no Moon)
    path = tmp_path / "n" / "img.fits"
    req = ExposureRequest(
        exposure_s=30.0, path=path, filter="r", object="GRB 260301A", ra_deg=150.5, dec_deg=20.25
    )
    task = asyncio.create_task(cam.expose(req))
    await spin()
    assert cam.state == "exposing"
    clock.advance(30.0)  # exposure done, readout (2 s) not yet
    await spin()
    assert not task.done() and not path.exists() and not path.with_name("img.fits.tmp").exists()
    clock.advance(VIS.readout_s)
    assert await task == path
    assert cam.state == "idle"
    assert path.exists() and not path.with_name("img.fits.tmp").exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["img.fits"]

    with fits.open(path) as hdul:
        h, data = hdul[0].header, hdul[0].data
        assert h["DATE-OBS"] == "2026-03-01T06:00:00.000"
        assert h["EXPTIME"] == 30.0 and h["FILTER"] == "r" and h["OBJECT"] == "GRB 260301A"
        assert h["RA"] == 150.5 and h["DEC"] == 20.25 and h["DETECTOR"] == "VIS"
        assert data.shape == (512, 512)
        med = float(np.median(data))
        sky_e_per_s = (
            10 ** (-0.4 * (VIS.dark_sky_mag_arcsec2 - VIS.zeropoint_mag)) * VIS.pixel_scale_arcsec**2
        )
        expected = VIS.bias_adu + (VIS.dark_e_per_s + sky_e_per_s) * 30.0 / VIS.gain_e_per_adu
        assert med == pytest.approx(expected, rel=0.02)
        assert float(data.max()) > med + 500  # stars
        # read + Poisson noise on the background, in ADU
        bg_sigma = np.sqrt(VIS.read_noise_e**2 + (VIS.dark_e_per_s + sky_e_per_s) * 30.0) / VIS.gain_e_per_adu
        mad = float(np.median(np.abs(data - med))) * 1.4826
        assert mad == pytest.approx(bg_sigma, rel=0.15)


async def test_dark_current_grows_with_exposure_and_nir_is_its_own_detector(
    clock: SimulatedClock, tmp_path: Path
) -> None:
    cfg = dataclasses.replace(NIR, shape=(64, 64))
    cam = Camera(clock, cfg)
    short = await drive(clock, cam.expose(ExposureRequest(1.0, tmp_path / "a.fits", image_type="dark")))
    long = await drive(
        clock, cam.expose(ExposureRequest(600.0, tmp_path / "b.fits", image_type="dark")), 50.0
    )
    m_short, m_long = (float(np.median(fits.getdata(p))) for p in (short, long))
    assert m_long - m_short == pytest.approx(cfg.dark_e_per_s * 599.0 / cfg.gain_e_per_adu, rel=0.05)
    assert fits.getheader(long)["DETECTOR"] == "NIR"


async def test_failed_write_leaves_neither_image_nor_tmp(
    clock: SimulatedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    cam = Camera(clock, SMALL_VIS)
    with pytest.raises(SimulatorError, match="disk full"):
        await drive(clock, cam.expose(ExposureRequest(1.0, tmp_path / "x.fits")))
    assert os.listdir(tmp_path) == []
    assert cam.state == "error"


async def test_camera_fault_injection_and_bad_exposure(clock: SimulatedClock, tmp_path: Path) -> None:
    cam = Camera(clock, SMALL_VIS)
    with pytest.raises(SimulatorError, match="exposure_s"):
        await cam.expose(ExposureRequest(-1.0, tmp_path / "x.fits"))
    cam.inject_fault("shutter stuck", times=2)
    for _ in range(2):
        with pytest.raises(DeviceFault, match="shutter stuck"):
            await cam.expose(ExposureRequest(1.0, tmp_path / "x.fits"))
    cam.clear_faults()
    await drive(clock, cam.expose(ExposureRequest(1.0, tmp_path / "x.fits")))
    assert (tmp_path / "x.fits").exists()


# --- filter wheel and dome ------------------------------------------------------------


async def test_filter_wheel_moves_the_short_way_at_step_time(clock: SimulatedClock) -> None:
    wheel = FilterWheel(clock, ["CLEAR", "g", "r", "i", "z", "y"], step_s=1.5)
    assert wheel.move_time_s(wheel.slot_of("r")) == 3.0
    assert wheel.move_time_s(wheel.slot_of("y")) == 1.5  # one step backwards round the wheel
    task = asyncio.create_task(wheel.move("r"))
    await spin()
    assert wheel.state == "busy"
    clock.advance(2.9)
    await spin()
    assert not task.done()
    clock.advance(0.1)
    assert await task == "r" and wheel.current_filter == "r" and wheel.state == "idle"
    with pytest.raises(SimulatorError, match=r"no filter 'H'"):
        await wheel.move("H")


async def test_dome_shutter_and_azimuth(clock: SimulatedClock) -> None:
    dome = Dome(clock, shutter_s=20.0, rate_deg_s=5.0)
    task = asyncio.create_task(dome.open())
    await spin()
    assert dome.shutter == "opening"
    clock.advance(20.0)
    await task
    assert dome.shutter == "open"
    assert dome.rotation_time_s(350.0) == pytest.approx(2.0)  # 10 deg the short way
    await drive(clock, dome.goto(350.0))
    assert dome.azimuth_deg == 350.0


# --- weather --------------------------------------------------------------------------


def readings(seed: int, times_s: list[float]) -> list[list[dict[str, float | bool]]]:
    clock = SimulatedClock(START)
    sources = weather_sources(clock, WeatherScenario(start=START, seed=seed))
    out = []
    last = 0.0
    for t in times_s:
        clock.advance(t - last)
        last = t
        out.append([s.read() for s in sources])
    return out


def test_weather_is_deterministic_for_a_seed() -> None:
    times = [0.0, 10.0, 600.0, 3600.0, 7200.0]
    a, b = readings(7, times), readings(7, times)
    assert a == b
    assert readings(8, times) != a
    # reading more often does not change what is read at a given time
    dense = readings(7, [float(t) for t in range(0, 7201, 60)])
    assert dense[-1] == a[-1] and dense[60] == a[3]
    station = a[0][0]
    assert set(station) == {"wind_ms", "humidity_pct", "ambient_c", "rain"}
    assert 0 <= float(station["wind_ms"]) <= 40 and 0 <= float(station["humidity_pct"]) <= 100


def test_scripted_rain_is_seen_by_every_source_and_sources_can_fail(clock: SimulatedClock) -> None:
    sources = weather_sources(clock, rain_after(START, after_s=600.0, for_s=300.0, seed=3))
    assert all(s.read()["rain"] is False for s in sources)
    clock.advance(700.0)
    now = [s.read() for s in sources]
    assert all(r["rain"] is True for r in now)
    assert float(now[1]["humidity_pct"]) > 90
    assert float(now[2]["sky_temp_c"]) > float(now[2]["ambient_c"]) - 10  # clouds: warm sky
    clock.advance(300.0)
    assert all(s.read()["rain"] is False for s in sources)

    station, plc, _cloud = sources
    station.lie(rain=True, wind_ms=99.0)
    assert station.read()["rain"] is True and plc.read()["rain"] is False
    plc.inject_fault("no answer on modbus", times=None)
    with pytest.raises(DeviceFault, match="modbus"):
        plc.read()
    plc.clear_faults()
    assert "rain" in plc.read()
    with pytest.raises(ValueError, match="unknown weather quantities"):
        ScriptedEvent(0, 1, {"snow": True})
