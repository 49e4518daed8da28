"""Simulators whose state follows the clock, and the fault API (disconnect, hang, refuse, clear)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pyros_common.clock import SimulatedClock
from pyros_common.domain.sky.sites import get_site
from pyros_simulators import (
    NIR,
    VIS,
    Aborted,
    Camera,
    DeviceFault,
    ExposureRequest,
    FilterWheel,
    Focuser,
    FocuserConfig,
    PlcSource,
    SimulatorError,
    Telescope,
    TelescopeConfig,
    WeatherScenario,
)
from pyros_simulators.astro import altaz_to_radec, separation_deg

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SITE = get_site("gft-spm")
TINY_VIS = dataclasses.replace(VIS, shape=(64, 64))


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


async def spin(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def radec_at(alt: float, az: float, clock: SimulatedClock) -> tuple[float, float]:
    return altaz_to_radec(alt, az, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=clock.now())


# --- time-following --------------------------------------------------------------------


async def test_a_60_degree_slew_at_3_deg_s_takes_20_s_plus_settle(clock: SimulatedClock) -> None:
    tel = Telescope(clock, SITE, TelescopeConfig(slew_rate_deg_s=3.0, settle_s=4.0))
    start = tel.position
    ra, dec = radec_at(30.0, 180.0, clock)  # from the zenith park: 60 deg
    assert separation_deg(*start, ra, dec) == pytest.approx(60.0, abs=0.05)
    task = asyncio.create_task(tel.slew(ra, dec))
    await spin()
    clock.advance(10.0)
    await spin()
    assert tel.state == "slewing" and not tel.tracking
    assert separation_deg(*start, *tel.position) == pytest.approx(30.0, abs=0.1)  # half way at 10 s
    clock.advance(10.0)
    await spin()
    assert separation_deg(*tel.position, ra, dec) < 0.05  # arrived, settling
    assert not task.done() and tel.state == "slewing"
    clock.advance(3.9)
    await spin()
    assert not task.done()
    clock.advance(0.2)  # 20 s + 4 s settle
    await task
    assert tel.state == "idle" and tel.tracking and tel.position == (ra, dec)


async def test_unpark_then_offsets_for_dithering(clock: SimulatedClock) -> None:
    tel = Telescope(clock, SITE, TelescopeConfig(unpark_s=5.0, offset_settle_s=1.0))
    with pytest.raises(SimulatorError, match="must be tracking"):
        await tel.offset(10.0, 0.0)
    task = asyncio.create_task(tel.unpark())
    await spin()
    clock.advance(4.9)
    await spin()
    assert not task.done() and tel.parked
    clock.advance(0.1)
    await task
    assert tel.state == "idle" and not tel.parked and not tel.tracking

    ra, dec = radec_at(60.0, 150.0, clock)
    task = asyncio.create_task(tel.slew(ra, dec))
    await spin()
    clock.advance(tel.config.settle_s + 15.0)
    await task
    task = asyncio.create_task(tel.offset(30.0, -20.0))
    await spin()
    assert tel.state == "slewing"
    clock.advance(1.1)
    await task
    new_ra, new_dec = tel.position
    assert (new_dec - dec) * 3600 == pytest.approx(-20.0, abs=1e-6)
    assert (new_ra - ra) * 3600 * np.cos(np.radians(dec)) == pytest.approx(30.0, abs=1e-6)
    assert tel.offset_arcsec == (30.0, -20.0) and tel.tracking


async def test_the_camera_cools_along_its_curve(clock: SimulatedClock) -> None:
    cam = Camera(clock, dataclasses.replace(TINY_VIS, cooling_tau_s=100.0, temperature_c=10.0))
    assert cam.temperature_c == 10.0 and cam.at_setpoint
    await cam.set_cooler(-50.0)
    assert cam.temperature_c == pytest.approx(10.0) and not cam.at_setpoint
    clock.advance(100.0)  # one time constant: 63 % of the way
    assert cam.temperature_c == pytest.approx(-50.0 + 60.0 * np.exp(-1.0), abs=1e-6)
    clock.advance(100.0)
    t200 = cam.temperature_c
    assert -50.0 < t200 < -40.0
    clock.advance(1000.0)
    assert cam.at_setpoint
    # dark current doubles every 6 degC warmer
    assert cam.dark_e_per_s(-44.0) == pytest.approx(2 * cam.dark_e_per_s(-50.0))
    with pytest.raises(SimulatorError, match="setpoint_c"):
        await cam.set_cooler(-150.0)
    nir = Camera(clock, NIR)
    assert nir.temperature_c == NIR.temperature_c  # starts cold


async def test_an_exposure_of_10_s_plus_readout_ends_when_the_clock_says(
    clock: SimulatedClock, tmp_path: Path
) -> None:
    cam = Camera(clock, TINY_VIS)
    path = tmp_path / "x.fits"
    task = asyncio.create_task(cam.expose(ExposureRequest(10.0, path)))
    await spin()
    assert cam.state == "exposing"
    clock.advance(10.0 + TINY_VIS.readout_s - 0.01)
    await spin()
    assert not task.done() and not path.exists()
    clock.advance(0.01)
    assert await task == path and path.exists() and cam.state == "idle"


async def test_focuser_moves_at_its_rate_and_filters_shift_the_best_focus(clock: SimulatedClock) -> None:
    foc = Focuser(
        clock, FocuserConfig(steps_per_s=100.0, settle_s=0.5, best_position=1000, start_position=1000)
    )
    wheel = FilterWheel(clock, focus_offsets={"CLEAR": 0, "g": 120})
    assert wheel.focus_offset("g") == 120 and wheel.focus_offset("y") == 0 and wheel.focus_offset() == 0
    assert foc.blur_arcsec(0) == 0.0 and foc.blur_arcsec(wheel.focus_offset("g")) > 0
    task = asyncio.create_task(foc.move(1120))
    await spin()
    clock.advance(1.6)
    await spin()
    assert not task.done()
    clock.advance(0.1)  # 120 steps / 100 per s + 0.5 s settle
    assert await task == 1120
    assert foc.blur_arcsec(wheel.focus_offset("g")) == 0.0
    with pytest.raises(SimulatorError, match="outside"):
        await foc.move(10**9)
    with pytest.raises(ValueError, match="not in the wheel"):
        FilterWheel(clock, focus_offsets={"H": 3})


async def test_plc_reports_mains_ups_and_outlets(clock: SimulatedClock) -> None:
    plc = PlcSource(clock, WeatherScenario(start=START), outlets=["dome"], ups_drain_pct_per_min=2.0)
    r = plc.read()
    assert r["mains"] is True and r["ups_charge_pct"] == 100.0 and r["power_dome"] is True
    plc.set_mains(False)
    clock.advance(600.0)
    assert plc.read()["ups_charge_pct"] == pytest.approx(80.0)
    plc.set_power("dome", False)
    assert plc.read()["power_dome"] is False
    with pytest.raises(SimulatorError, match="no outlet"):
        plc.set_power("toaster", True)


# --- faults ----------------------------------------------------------------------------


async def test_disconnect_refuse_and_clear(clock: SimulatedClock) -> None:
    tel = Telescope(clock, SITE)
    state = tel.inject("disconnect", "network cable")
    assert state.disconnected and tel.offline and tel.state == "offline"
    with pytest.raises(SimulatorError, match=r"offline \(network cable\)"):
        await tel.unpark()
    tel.inject("clear")
    assert not tel.offline and tel.state == "parked"  # back as it was
    tel.inject("refuse", "axis 2 encoder error")
    for _ in range(2):
        with pytest.raises(DeviceFault, match="encoder error"):
            await tel.unpark()
    assert tel.faults.refusing == "axis 2 encoder error"
    tel.inject("clear")
    assert tel.state == "parked" and tel.faults.refusing is None
    task = asyncio.create_task(tel.unpark())
    await spin()
    clock.advance(tel.config.unpark_s)
    await task
    assert tel.state == "idle"
    with pytest.raises(ValueError, match="unknown fault"):
        tel.inject("explode")


async def test_hang_holds_commands_until_cleared_or_aborted(clock: SimulatedClock, tmp_path: Path) -> None:
    wheel = FilterWheel(clock)
    wheel.inject("hang")
    task = asyncio.create_task(wheel.move("r"))
    await spin()
    clock.advance(3600.0)
    await spin()
    assert not task.done() and wheel.state == "busy" and wheel.faults.hung
    wheel.inject("clear")
    assert await task == "r"

    cam = Camera(clock, TINY_VIS)
    cam.inject("hang")
    task2 = asyncio.create_task(cam.expose(ExposureRequest(1.0, tmp_path / "h.fits")))
    await spin()
    clock.advance(100.0)
    await spin()
    assert not task2.done()
    await cam.abort()
    with pytest.raises(Aborted):
        await task2
    assert not (tmp_path / "h.fits").exists() and cam.state == "idle"
