"""device-gateway on the in-process bus with the simulators and a SimulatedClock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from astropy.io import fits
from fastapi import FastAPI
from pyros_common.auth import current_user
from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import DeviceCommand, DeviceStatus
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_device_gateway.app import DeviceGatewayService
from pyros_device_gateway.drivers import DeviceDriver, DriverCommand, Progress, Reading, no_progress
from pyros_device_gateway.drivers.simulator import SimulatedObservatory
from pyros_simulators.astro import altaz_to_radec

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SITE = get_site("gft-spm")


@dataclass
class Rig:
    svc: DeviceGatewayService
    bus: InProcessBus
    clock: SimulatedClock
    data_dir: Path

    @property
    def sims(self) -> SimulatedObservatory:
        assert self.svc.simulators is not None
        return self.svc.simulators

    async def send(
        self, device_id: str, command: str, command_id: uuid.UUID | None = None, **params: Any
    ) -> uuid.UUID:
        cmd = DeviceCommand(
            device_id=device_id, command=command, params=params, command_id=command_id or uuid.uuid4()
        )
        await self.bus.publish(DeviceCommand.topic, cmd)
        await self.bus.drain()
        for _ in range(20):  # let the command task start and report progress
            await asyncio.sleep(0)
        await self.bus.drain()
        return cmd.command_id

    async def run_commands(self, step_s: float = 1.0) -> None:
        """Advance simulated time until every accepted command has finished."""
        while self.svc.handler._tasks:
            self.clock.advance(step_s)
            await asyncio.sleep(0.001)
        await self.bus.drain()

    def statuses(self) -> list[DeviceStatus]:
        return [DeviceStatus.model_validate_json(v) for v in self.bus.log[DeviceStatus.topic]]

    def replies(self, command_id: uuid.UUID) -> list[DeviceStatus]:
        return [s for s in self.statuses() if s.command_id == command_id]


def make_rig(tmp_path: Path, drivers: dict[str, DeviceDriver] | None = None) -> Rig:
    clock = SimulatedClock(START)
    bus = InProcessBus(clock=clock)
    ctx = ServiceContext(bus=bus, clock=clock, settings=Settings(data_dir=tmp_path, telescope_id="gft"))
    svc = DeviceGatewayService(ctx, drivers=drivers)
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    return Rig(svc, bus, clock, tmp_path)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = make_rig(tmp_path)
    await r.bus.start()
    yield r
    await r.svc.on_stop()
    await r.bus.stop()


def radec_at(alt: float, az: float) -> tuple[float, float]:
    return altaz_to_radec(alt, az, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=START)


async def test_slew_replies_slewing_then_idle_with_the_command_id(rig: Rig) -> None:
    assert rig.svc.group == "device-gateway"
    ra, dec = radec_at(60.0, 180.0)
    cid = await rig.send("telescope", "slew", ra_deg=ra, dec_deg=dec)
    first = rig.replies(cid)
    assert [s.state for s in first] == ["slewing"]
    assert first[0].producer == "device-gateway" and first[0].kind == "telescope" and first[0].ok
    await rig.run_commands()
    replies = rig.replies(cid)
    assert [s.state for s in replies] == ["slewing", "idle"]
    final = replies[-1]
    assert final.ok and final.error == ""
    assert final.ra_deg == pytest.approx(ra, abs=1e-5) and final.dec_deg == pytest.approx(dec, abs=1e-5)
    assert rig.sims.telescope.commands_run == 1


async def test_expose_writes_a_fits_file_under_data_dir_images_night(rig: Rig) -> None:
    cid = await rig.send(
        "cam-vis", "expose", exposure_s=5.0, object="M 51", request_id="R42", sequence_id="S1", frame=3
    )
    assert [s.state for s in rig.replies(cid)] == ["exposing"]
    await rig.run_commands()
    final = rig.replies(cid)[-1]
    assert final.ok and final.state == "idle", final.error
    rel = final.values["path"]
    assert rel == "images/2026-02-28/cam-vis/cam-vis_R42_S1_0003.fits"  # night named by its evening
    path = rig.data_dir / str(rel)
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the .tmp is gone
    h = fits.getheader(path)
    assert h["EXPTIME"] == 5.0 and h["OBJECT"] == "M 51" and h["FILTER"] == "CLEAR" and h["DETECTOR"] == "VIS"
    assert h["CMDID"] == str(cid)


async def test_bad_params_are_rejected_with_a_reason(rig: Rig) -> None:
    bad_ra = await rig.send("telescope", "slew", ra_deg=400.0, dec_deg=10.0)
    missing = await rig.send("telescope", "slew", ra_deg=10.0)
    extra = await rig.send("cam-vis", "expose", exposure_s=1.0, shutter="open")
    traversal = await rig.send("cam-vis", "expose", exposure_s=1.0, name="../../etc/passwd")
    wrong_device = await rig.send("telescope", "expose", exposure_s=1.0)
    unknown = await rig.send("spectrograph", "status")
    both = await rig.send("filterwheel", "set_filter", filter="r", position=2)
    await rig.run_commands()
    reasons = {
        cid: rig.replies(cid) for cid in (bad_ra, missing, extra, traversal, wrong_device, unknown, both)
    }
    for cid, replies in reasons.items():
        assert len(replies) == 1 and replies[0].ok is False, (cid, replies)
    assert "ra_deg" in reasons[bad_ra][0].error and "less than 360" in reasons[bad_ra][0].error
    assert "dec_deg: Field required" in reasons[missing][0].error
    assert "shutter" in reasons[extra][0].error
    assert "name" in reasons[traversal][0].error
    assert "does not support expose" in reasons[wrong_device][0].error
    assert "unknown device 'spectrograph'" in reasons[unknown][0].error
    assert "exactly one of filter or position" in reasons[both][0].error
    assert rig.sims.telescope.commands_run == 0 and rig.sims.cam_vis.commands_run == 0
    assert not (rig.data_dir / "images").exists()


async def test_below_horizon_and_device_faults_reply_not_ok(rig: Rig) -> None:
    low = await rig.send("telescope", "slew", ra_deg=radec_at(5.0, 90.0)[0], dec_deg=radec_at(5.0, 90.0)[1])
    rig.sims.cam_nir.inject_fault("detector controller not responding")
    fault = await rig.send("cam-nir", "expose", exposure_s=1.0)
    await rig.run_commands()
    [r_low] = rig.replies(low)
    assert not r_low.ok and "below the horizon limit of 15.0 deg" in r_low.error and r_low.state == "parked"
    [r_fault] = rig.replies(fault)
    assert not r_fault.ok and "not responding" in r_fault.error and r_fault.state == "error"


async def test_the_same_command_id_is_executed_once(rig: Rig) -> None:
    ra, dec = radec_at(50.0, 150.0)
    cid = uuid.uuid4()
    await rig.send("telescope", "slew", command_id=cid, ra_deg=ra, dec_deg=dec)
    await rig.send("telescope", "slew", command_id=cid, ra_deg=ra, dec_deg=dec)
    await rig.run_commands()
    await rig.send("telescope", "slew", command_id=cid, ra_deg=ra, dec_deg=dec)  # after completion too
    await rig.run_commands()
    assert rig.sims.telescope.commands_run == 1
    assert [s.state for s in rig.replies(cid)] == ["slewing", "idle"]
    assert rig.svc.handler.duplicates == 2


async def test_abort_reaches_a_slewing_mount(rig: Rig) -> None:
    ra, dec = radec_at(20.0, 270.0)
    slew = await rig.send("telescope", "slew", ra_deg=ra, dec_deg=dec)
    rig.clock.advance(3.0)
    abort = await rig.send("telescope", "abort")
    await rig.run_commands()
    [r_abort] = rig.replies(abort)
    assert r_abort.ok
    assert [s.state for s in rig.replies(slew)] == ["slewing", "idle"]
    assert not rig.replies(slew)[-1].ok and "aborted" in rig.replies(slew)[-1].error


async def test_commands_to_one_device_run_in_order_and_filter_feeds_the_camera(rig: Rig) -> None:
    f = await rig.send("filterwheel", "set_filter", filter="i")
    e = await rig.send("cam-vis", "expose", exposure_s=2.0, name="after-filter")
    # the camera does not wait for the wheel by itself: the observer sequences them, we run it out
    await rig.run_commands()
    assert rig.replies(f)[-1].values["filter"] == "i"
    assert rig.replies(e)[-1].ok
    path = rig.data_dir / str(rig.replies(e)[-1].values["path"])
    assert path.name == "cam-vis_after-filter.fits"


async def test_command_timeout_is_measured_on_the_clock(rig: Rig) -> None:
    cmd = DeviceCommand(device_id="cam-vis", command="expose", params={"exposure_s": 100.0}, timeout_s=10.0)
    await rig.bus.publish(DeviceCommand.topic, cmd)
    await rig.bus.drain()
    await rig.run_commands()
    final = rig.replies(cmd.command_id)[-1]
    assert not final.ok and "timed out after 10 s" in final.error
    assert rig.sims.cam_vis.state == "idle"  # the exposure was stopped, not left running


async def test_periodic_status_of_every_device_and_the_devices_route(rig: Rig) -> None:
    await rig.svc.on_start()
    for _ in range(11):
        await asyncio.sleep(0.001)
        rig.clock.advance(1.0)
    await asyncio.sleep(0.001)
    await rig.bus.drain()
    periodic = [s for s in rig.statuses() if s.command_id is None]
    count = {d: sum(1 for s in periodic if s.device_id == d) for d in rig.svc.handler.devices}
    assert count["telescope"] == 3 and count["cam-vis"] == 3  # t = 0, 5, 10 s
    assert count["weather"] == 2 and count["plc"] == 2 and count["cloud-sensor"] == 2  # t = 0, 10 s
    weather = next(s for s in periodic if s.device_id == "weather")
    assert weather.kind == "weather" and "wind_ms" in weather.values and weather.values["source"] == "weather"
    assert next(s for s in periodic if s.device_id == "plc").kind == "plc"

    app = FastAPI()
    router = rig.svc.router()
    assert router is not None
    app.include_router(router, prefix="/api/v1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        anonymous = await client.get("/api/v1/devices")
        assert anonymous.status_code == 401  # every device route needs a token
        app.dependency_overrides[current_user] = lambda: None
        resp = await client.get("/api/v1/devices")
        assert resp.status_code == 200
        devices = {d["device_id"]: d for d in resp.json()}
        assert set(devices) >= {  # the simulators may add devices (a focuser...)
            "telescope",
            "cam-vis",
            "cam-nir",
            "filterwheel",
            "dome",
            "weather",
            "plc",
            "cloud-sensor",
        }
        assert devices["telescope"]["state"] == "parked" and devices["telescope"]["driver"] == "simulator"
        assert "slew" in devices["telescope"]["commands"]
        assert devices["weather"]["last_status"]["values"]["source"] == "weather"
        assert (await client.get("/api/v1/devices/nope")).status_code == 404


class LyingDriver(DeviceDriver):
    """A device that answers nonsense (a state the contract does not know)."""

    kind = "focuser"
    driver = "fake"
    commands = frozenset({"set_focus"})

    async def connect(self) -> None:
        return None

    async def status(self) -> Reading:
        return Reading(state="wobbling")  # type: ignore[arg-type]

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        return Reading(state="idle", values={"position": [1, 2]})  # type: ignore[dict-item]

    async def close(self) -> None:
        return None


async def test_malformed_device_replies_are_rejected_with_a_reason(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, drivers={"focuser": LyingDriver("focuser")})
    await rig.bus.start()
    try:
        status = await rig.send("focuser", "status")
        focus = await rig.send("focuser", "set_focus", position=1200)
        await rig.run_commands()
        [r_status] = rig.replies(status)
        assert not r_status.ok and r_status.state == "error" and "malformed device reply" in r_status.error
        [r_focus] = rig.replies(focus)
        assert not r_focus.ok and "malformed device reply rejected: values.position" in r_focus.error
    finally:
        await rig.bus.stop()


async def test_a_command_delivered_again_hours_later_is_refused_as_stale(rig: Rig) -> None:
    """The bus is at-least-once: after a restart a slew from hours ago may come again. It must not
    move the mount; it failed for its sender when its timeout ran out."""
    from datetime import timedelta

    ra, dec = radec_at(60.0, 180.0)
    old = DeviceCommand(
        device_id="telescope", command="slew", params={"ra_deg": ra, "dec_deg": dec}, timeout_s=120
    )
    await rig.bus.publish(
        DeviceCommand.topic, old.stamped(producer="observer", sent_at=START - timedelta(hours=2))
    )
    await rig.bus.drain()
    [reply] = rig.replies(old.command_id)
    assert not reply.ok and reply.error.startswith("stale command: sent at")
    assert "beyond its 120 s timeout; not executed" in reply.error
    assert rig.sims.telescope.commands_run == 0
