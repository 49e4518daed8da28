"""device-gateway on its simulators: injected faults seen as the gateway reports them, the fault API, new commands."""

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
from fastapi import FastAPI
from pyros_common.auth import CurrentUser, current_user
from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import DeviceCommand, DeviceStatus
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_device_gateway.app import DeviceGatewayService
from pyros_device_gateway.drivers import DriverError
from pyros_device_gateway.drivers.simulator import SimulatedObservatory
from pyros_device_gateway.drivers.simulator.faults_api import simulator_faults_router
from pyros_simulators.astro import altaz_to_radec

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SITE = get_site("gft-spm")


@dataclass
class Rig:
    svc: DeviceGatewayService
    bus: InProcessBus
    clock: SimulatedClock

    @property
    def sims(self) -> SimulatedObservatory:
        assert self.svc.simulators is not None
        return self.svc.simulators

    async def send(self, device_id: str, command: str, **params: Any) -> uuid.UUID:
        cmd = DeviceCommand(device_id=device_id, command=command, params=params, command_id=uuid.uuid4())
        await self.bus.publish(DeviceCommand.topic, cmd)
        await self.settle()
        return cmd.command_id

    async def settle(self) -> None:
        await self.bus.drain()
        for _ in range(20):
            await asyncio.sleep(0)
        await self.bus.drain()

    async def advance(self, seconds: float, step_s: float = 1.0) -> None:
        """Advance simulated time by ``seconds``, whatever is running (hung commands included)."""
        for _ in range(round(seconds / step_s)):
            self.clock.advance(step_s)
            await asyncio.sleep(0.001)
        await self.settle()

    def replies(self, command_id: uuid.UUID) -> list[DeviceStatus]:
        out = [DeviceStatus.model_validate_json(v) for v in self.bus.log[DeviceStatus.topic]]
        return [s for s in out if s.command_id == command_id]

    def last(self, command_id: uuid.UUID) -> DeviceStatus:
        return self.replies(command_id)[-1]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = SimulatedClock(START)
    bus = InProcessBus(clock=clock)
    ctx = ServiceContext(bus=bus, clock=clock, settings=Settings(data_dir=tmp_path, telescope_id="gft"))
    svc = DeviceGatewayService(ctx)
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    r = Rig(svc, bus, clock)
    await bus.start()
    yield r
    await svc.on_stop()
    await bus.stop()


def radec_at(alt: float, az: float) -> tuple[float, float]:
    return altaz_to_radec(alt, az, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=START)


async def test_a_disconnected_device_is_offline_for_the_gateway_and_clear_recovers(rig: Rig) -> None:
    drv = rig.sims.drivers()["dome"]
    rig.sims.inject("dome", "disconnect", "serial link down")
    with pytest.raises(DriverError, match=r"dome is offline \(serial link down\)"):
        await drv.status()
    with pytest.raises(DriverError, match="offline"):
        await drv.connect()

    status = rig.last(await rig.send("dome", "status"))
    assert status.state == "offline" and not status.ok and "serial link down" in status.error
    cmd = rig.last(await rig.send("dome", "dome", action="open"))
    assert not cmd.ok and "offline" in cmd.error

    rig.sims.inject("dome", "clear")
    await rig.advance(2.0)  # the gateway tries again once its reconnection backoff has run out
    status = rig.last(await rig.send("dome", "status"))
    assert status.state == "idle" and status.ok
    opened = await rig.send("dome", "dome", action="open")
    await rig.advance(40.0)
    assert rig.last(opened).ok and rig.last(opened).values["shutter"] == "open"


async def test_refuse_fails_commands_with_the_reason_until_cleared(rig: Rig) -> None:
    rig.sims.inject("filterwheel", "refuse", "wheel jammed at slot 3")
    for _ in range(2):
        reply = rig.last(await rig.send("filterwheel", "set_filter", filter="r"))
        assert not reply.ok and "wheel jammed at slot 3" in reply.error
    rig.sims.inject("filterwheel", "clear")
    cid = await rig.send("filterwheel", "set_filter", filter="g")
    await rig.advance(5.0)
    final = rig.last(cid)
    assert final.ok and final.values["filter"] == "g"
    assert final.values["focus_offset"] == rig.sims.filterwheel.focus_offset("g") != 0


async def test_hang_keeps_a_command_running_until_cleared(rig: Rig) -> None:
    rig.sims.inject("focuser", "hang")
    cid = await rig.send("focuser", "set_focus", position=26_000)
    await rig.advance(60.0)
    assert [s.state for s in rig.replies(cid)] == ["busy"]  # started, never finished
    rig.sims.inject("focuser", "clear")
    await rig.advance(2.0)
    final = rig.last(cid)
    assert final.ok and final.state == "idle" and final.values["position"] == 26_000


async def test_the_grammar_on_the_simulators_unpark_offset_cooler(rig: Rig) -> None:
    unpark = await rig.send("telescope", "unpark")
    await rig.advance(10.0)
    assert rig.last(unpark).ok and rig.last(unpark).values["parked"] is False
    ra, dec = radec_at(60.0, 180.0)
    slew = await rig.send("telescope", "slew", ra_deg=ra, dec_deg=dec)
    await rig.advance(30.0)
    assert rig.last(slew).ok and rig.last(slew).values["tracking"] is True
    offset = await rig.send("telescope", "offset", dra_arcsec=15.0, ddec_arcsec=-15.0)
    await rig.advance(3.0)
    final = rig.last(offset)
    assert (
        final.ok and final.values["offset_ra_arcsec"] == 15.0 and final.values["offset_dec_arcsec"] == -15.0
    )
    assert final.dec_deg == pytest.approx(dec - 15.0 / 3600.0, abs=1e-6)

    cooler = rig.last(await rig.send("cam-vis", "cooler", setpoint_c=-40.0))
    assert cooler.ok and cooler.values["setpoint_c"] == -40.0 and cooler.values["at_setpoint"] is False
    await rig.advance(600.0, step_s=10.0)
    status = rig.last(await rig.send("cam-vis", "status"))
    assert status.temperature_c == pytest.approx(-40.0, abs=0.5) and status.values["at_setpoint"] is True


async def test_fault_api_admin_or_expert_only(rig: Rig) -> None:
    app = FastAPI()
    app.include_router(simulator_faults_router(observatory=rig.sims), prefix="/api/v1")
    role = {"name": "user"}
    app.dependency_overrides[current_user] = lambda: CurrentUser(1, "u", role["name"], frozenset())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        url = "/api/v1/simulators/cam-nir/faults"
        body = {"fault": "refuse", "reason": "controller busy"}
        assert (await client.post(url, json=body)).status_code == 403
        role["name"] = "expert"
        resp = await client.post(url, json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "device_id": "cam-nir",
            "disconnected": False,
            "hung": False,
            "refusing": "controller busy",
            "pending": 0,
        }
        assert rig.sims.cam_nir.faults.refusing == "controller busy"
        role["name"] = "admin"
        assert (await client.post(url, json={"fault": "disconnect"})).json()["disconnected"] is True
        assert (await client.get(url)).json()["disconnected"] is True
        assert (await client.post(url, json={"fault": "clear"})).json()["refusing"] is None
        assert not rig.sims.cam_nir.offline
        assert (await client.post(url, json={"fault": "explode"})).status_code == 422
        missing = await client.post("/api/v1/simulators/spectrograph/faults", json={"fault": "hang"})
        assert missing.status_code == 404 and "spectrograph" in missing.json()["detail"]


async def test_power_off_through_the_plc_takes_a_device_offline(rig: Rig) -> None:
    rig.sims.set_power("cam-nir", False)
    status = rig.last(await rig.send("cam-nir", "status"))
    assert status.state == "offline" and "no power" in status.error
    plc = rig.last(await rig.send("plc", "status"))
    assert plc.values["power_cam-nir"] is False and plc.values["mains"] is True
    rig.sims.set_power("cam-nir", True)
    reconnect = await rig.send("cam-nir", "connect")  # at once, not after the backoff
    await rig.settle()
    assert rig.last(reconnect).ok and rig.last(reconnect).state == "idle"
