"""Operators' manual operations (POST /devices/{id}/commands) and the reconnect loop, on the in-process bus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pyros_common.auth import CurrentUser, current_user
from pyros_common.contracts import DeviceCommand, DeviceStatus
from pyros_device_gateway.api import DeviceView, routes
from pyros_device_gateway.drivers import (
    DeviceDriver,
    DriverCommand,
    DriverError,
    Progress,
    Reading,
    no_progress,
)
from test_device_gateway_service import Rig, make_rig

ADMIN = CurrentUser(id=1, username="ada", role="admin", programs=frozenset())
EXPERT = CurrentUser(id=2, username="eve", role="expert", programs=frozenset())
USER = CurrentUser(id=3, username="bob", role="user", programs=frozenset())


def client_for(app: FastAPI, user: CurrentUser | None) -> httpx.AsyncClient:
    if user is not None:
        app.dependency_overrides[current_user] = lambda: user
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = make_rig(tmp_path)
    await r.bus.start()
    yield r
    await r.svc.on_stop()
    await r.bus.stop()


def service_app(rig: Rig) -> FastAPI:
    app = FastAPI()
    router = rig.svc.router()
    assert router is not None
    app.include_router(router, prefix="/api/v1")
    return app


def commands(rig: Rig) -> list[DeviceCommand]:
    return [DeviceCommand.model_validate_json(v) for v in rig.bus.log.get(DeviceCommand.topic, [])]


async def observer_expose(rig: Rig, exposure_s: float = 30.0) -> DeviceCommand:
    cmd = DeviceCommand(device_id="cam-vis", command="expose", params={"exposure_s": exposure_s}).stamped(
        producer="observer", sent_at=rig.clock.now()
    )
    await rig.bus.publish(DeviceCommand.topic, cmd, "cam-vis")
    await rig.bus.drain()
    for _ in range(20):
        await asyncio.sleep(0)
    await rig.bus.drain()
    return cmd


async def test_a_manual_command_is_published_and_answered_202(rig: Rig) -> None:
    app = service_app(rig)
    async with client_for(app, EXPERT) as client:
        resp = await client.post(
            "/api/v1/devices/filterwheel/commands", json={"command": "set_filter", "params": {"filter": "r"}}
        )
        assert resp.status_code == 202, resp.text
        body = resp.json()
        sent = [c for c in commands(rig) if str(c.command_id) == body["command_id"]]
        assert len(sent) == 1 and sent[0].command == "set_filter" and sent[0].params == {"filter": "r"}
        assert sent[0].producer == "device-gateway" and not body["forced"]
        await rig.bus.drain()
        await rig.run_commands()
        final = rig.replies(sent[0].command_id)[-1]
        assert final.ok and final.values["filter"] == "r", final.error

        listed = {d["device_id"]: d for d in (await client.get("/api/v1/devices")).json()}
        # the real send time of the last status, not unknown and not the epoch
        assert listed["filterwheel"]["updated_at"] == final.sent_at.isoformat().replace("+00:00", "Z")
        assert listed["filterwheel"]["last_status"]["command_id"] == body["command_id"]

        bad = await client.post(
            "/api/v1/devices/filterwheel/commands", json={"command": "slew", "params": {}}
        )
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        nope = await client.post("/api/v1/devices/nope/commands", json={"command": "status"})
        assert nope.status_code == 404


async def test_refused_while_a_sequence_runs_unless_forced(rig: Rig) -> None:
    app = service_app(rig)
    seq = await observer_expose(rig)
    assert rig.svc.handler.sequence_running()
    running = rig.replies(seq.command_id)[-1]
    assert running.state == "exposing" and running.values["issued_by"] == "observer"
    async with client_for(app, ADMIN) as client:
        body = {"command": "slew", "params": {"ra_deg": 10.0, "dec_deg": 20.0}}
        refused = await client.post("/api/v1/devices/telescope/commands", json=body)
        assert refused.status_code == 409
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "cam-vis (expose)" in refused.json()["detail"]
        assert not [c for c in commands(rig) if c.command == "slew"]  # nothing was sent

        forced = await client.post("/api/v1/devices/telescope/commands", json={**body, "force": True})
        assert forced.status_code == 202 and forced.json()["forced"] is True
        assert [c.command for c in commands(rig) if c.device_id == "telescope"] == ["slew"]

        await rig.run_commands()  # the sequence's exposure ends: manual operations are free again
        assert not rig.svc.handler.sequence_running()
        free = await client.post("/api/v1/devices/dome/commands", json={"command": "status"})
        assert free.status_code == 202 and free.json()["forced"] is False


async def test_plain_users_may_not_command_devices(rig: Rig) -> None:
    app = service_app(rig)
    async with client_for(app, None) as client:
        anonymous = await client.post("/api/v1/devices/dome/commands", json={"command": "status"})
        assert anonymous.status_code == 401
    async with client_for(app, USER) as client:
        forbidden = await client.post("/api/v1/devices/dome/commands", json={"command": "status"})
        assert forbidden.status_code == 403
        assert (await client.get("/api/v1/devices")).status_code == 200  # reading stays open to users
    assert commands(rig) == []


async def test_the_gateway_route_publishes_on_its_bus_and_reads_busy_from_status(rig: Rig) -> None:
    """As mounted by the gateway: a DeviceView fed by pyros.device.status, the app's bus to publish."""
    view = DeviceView(rig.clock)
    rig.bus.subscribe(DeviceStatus.topic, "gateway", view.on_status)
    app = FastAPI()
    app.include_router(routes(devices=view), prefix="/api/v1")
    app.state.ctx = rig.svc.ctx
    await rig.svc.handler.publish_status("telescope")
    await observer_expose(rig)
    await rig.bus.drain()
    async with client_for(app, ADMIN) as client:
        listed = {d["device_id"]: d for d in (await client.get("/api/v1/devices")).json()}
        assert listed["telescope"]["updated_at"] is not None
        body = {"command": "park"}
        assert (await client.post("/api/v1/devices/telescope/commands", json=body)).status_code == 409
        resp = await client.post("/api/v1/devices/telescope/commands", json={**body, "force": True})
        assert resp.status_code == 202
        sent = [c for c in commands(rig) if str(c.command_id) == resp.json()["command_id"]]
        assert len(sent) == 1 and sent[0].producer == "gateway" and sent[0].telescope_id == "gft"


class FlakyCamera(DeviceDriver):
    """A camera whose link can be cut: connect fails and status is offline while it is down."""

    kind = "camera"
    driver = "fake"
    commands = frozenset({"cooler", "expose"})

    def __init__(self, device_id: str) -> None:
        super().__init__(device_id)
        self.up = True
        self.connects = 0
        self.executed: list[tuple[str, Any]] = []
        self.temperature = 20.0

    async def connect(self) -> None:
        self.connects += 1
        if not self.up:
            raise DriverError("cannot reach the camera: connection refused")

    async def status(self) -> Reading:
        if not self.up:
            return Reading(state="offline", ok=False, error="camera link lost")
        return Reading(state="idle", temperature_c=self.temperature)

    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        if not self.up:
            raise DriverError("camera link lost")
        self.executed.append((command.name, command.params))
        return await self.status()

    async def close(self) -> None:
        return None


async def test_a_lost_device_goes_offline_is_pinged_with_backoff_and_comes_back(tmp_path: Path) -> None:
    cam = FlakyCamera("cam")
    rig = make_rig(tmp_path, drivers={"cam": cam})
    await rig.bus.start()
    try:
        cid = await rig.send("cam", "cooler", setpoint_c=-20.0)
        await rig.run_commands()
        assert rig.replies(cid)[-1].ok and cam.executed[-1][0] == "cooler"
        await rig.svc.on_start()  # status every 5 s, reconnect pass every 1 s, backoff 1 s doubling to 60 s
        await asyncio.sleep(0.001)
        cam.up = False
        connects_before = cam.connects

        async def advance(seconds: int) -> None:
            for _ in range(seconds * 4):
                rig.clock.advance(0.25)
                await asyncio.sleep(0.001)
            await rig.bus.drain()

        await advance(6)
        offline = [s for s in rig.statuses() if s.device_id == "cam" and s.state == "offline"]
        assert offline and not offline[0].ok and offline[0].error == "camera link lost"
        assert rig.svc.handler.devices["cam"].connected is False
        await advance(30)
        # pinged after 1, 2, 4, 8 and 16 s of backoff (about 31 s from the loss): not every poll
        attempts = cam.connects - connects_before
        assert 3 <= attempts <= 6, attempts
        assert rig.svc.handler.devices["cam"].backoff_s >= 8.0

        cam.up = True
        await advance(70)  # the longest backoff is 60 s
        back = [s for s in rig.statuses() if s.device_id == "cam"][-1]
        assert back.state == "idle" and back.ok
        assert rig.svc.handler.devices["cam"].connected and rig.svc.handler.devices["cam"].backoff_s == 0
        # re-initialised: the camera was told its set point again
        assert [name for name, _ in cam.executed] == ["cooler", "cooler"]
        assert cam.executed[-1][1].setpoint_c == -20.0

        # and a command sent while it is down fails at once, saying why
        cam.up = False
        down = await rig.send("cam", "expose", exposure_s=1.0)
        await rig.run_commands()
        reply = rig.replies(down)[-1]
        assert not reply.ok and reply.state == "offline" and "link lost" in reply.error
        assert uuid.UUID(str(reply.command_id)) == down
    finally:
        await rig.svc.on_stop()
        await rig.bus.stop()
