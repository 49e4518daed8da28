"""The gateway composes the services' router factories and never builds a service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pyros_cli import serve
from pyros_common.auth import current_user
from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import DeviceStatus
from pyros_common.runtime.service import Service, ServiceContext
from pyros_common.settings import Settings
from pyros_device_gateway.app import DeviceGatewayService
from pyros_gateway.app import GatewayService
from pyros_gateway.routes import ROUTES

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


@dataclass
class Rig:
    ctx: ServiceContext
    bus: InProcessBus
    clock: SimulatedClock
    gateway: GatewayService
    app: FastAPI

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")

    async def status(self, device_id: str, sent_at: datetime, **fields: Any) -> DeviceStatus:
        event = DeviceStatus(device_id=device_id, **fields).stamped(
            producer="device-gateway", sent_at=sent_at
        )
        await self.bus.publish(DeviceStatus.topic, event)
        await self.bus.drain()
        return event


def _context(tmp_path: Path) -> tuple[ServiceContext, InProcessBus, SimulatedClock]:
    clock = SimulatedClock(START)
    bus = InProcessBus(clock=clock)
    ctx = ServiceContext(bus=bus, clock=clock, settings=Settings(data_dir=tmp_path, telescope_id="gft"))
    return ctx, bus, clock


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ctx, bus, clock = _context(tmp_path)
    gw = GatewayService(ctx, ROUTES, group_suffix="-test")
    for topic, handler in gw.subscriptions():
        bus.subscribe(topic, gw.group, handler)
    app = gw.create_app([gw])
    app.dependency_overrides[current_user] = lambda: None
    await bus.start()
    yield Rig(ctx, bus, clock, gw, app)
    await bus.stop()


async def test_devices_are_those_seen_on_device_status_with_their_times(rig: Rig) -> None:
    sent = START - timedelta(seconds=2)
    await rig.status("telescope", sent, kind="telescope", state="slewing", ra_deg=83.6, dec_deg=22.0)
    rig.clock.advance(3.0)
    await rig.status(
        "cam-vis", sent + timedelta(seconds=3), kind="camera", state="exposing", temperature_c=-60.5
    )
    # An older status arriving late never replaces a newer one.
    await rig.status("telescope", sent - timedelta(seconds=10), kind="telescope", state="parked")

    async with rig.client() as client:
        resp = await client.get("/api/v1/devices")
        one = await client.get("/api/v1/devices/cam-vis")
        missing = await client.get("/api/v1/devices/dome")
    assert resp.status_code == 200
    devices = {d["device_id"]: d for d in resp.json()}
    assert set(devices) == {"telescope", "cam-vis"}
    tel, cam = devices["telescope"], devices["cam-vis"]
    assert tel["state"] == "slewing" and tel["ra_deg"] == 83.6 and tel["dec_deg"] == 22.0
    assert datetime.fromisoformat(tel["updated_at"]) == sent  # the envelope time, not 1970
    assert datetime.fromisoformat(tel["seen_at"]) == START
    assert "slew" in tel["commands"] and tel["driver"] is None
    assert cam["state"] == "exposing" and cam["temperature_c"] == -60.5
    assert datetime.fromisoformat(cam["updated_at"]) == sent + timedelta(seconds=3)
    assert datetime.fromisoformat(cam["seen_at"]) == START + timedelta(seconds=3)
    assert one.json() == cam
    assert missing.status_code == 404


async def test_every_route_is_mounted_and_the_gateway_group_is_its_own(rig: Rig) -> None:
    assert rig.gateway.group == "gateway-test"
    assert {t for t, _ in rig.gateway.subscriptions()} == {
        "pyros.heartbeat",
        "pyros.device.status",
        "pyros.system",
    }
    paths = set(rig.app.openapi()["paths"])
    for path in (
        "/api/v1/alerts",
        "/api/v1/requests",
        "/api/v1/schedule",
        "/api/v1/devices",
        "/api/v1/login/access-token",
    ):
        assert path in paths, path


async def test_all_in_one_the_gateway_shows_what_device_gateway_publishes(tmp_path: Path) -> None:
    """``pyros up``: device-gateway runs beside the gateway, whose routes read the same kind of view."""
    ctx, bus, _ = _context(tmp_path)
    dg = DeviceGatewayService(ctx)
    gw = GatewayService(ctx, ROUTES)
    for svc in (dg, gw):
        for topic, handler in svc.subscriptions():
            bus.subscribe(topic, svc.group, handler)
    app = gw.create_app([dg, gw])
    app.dependency_overrides[current_user] = lambda: None
    await bus.start()
    try:
        for device_id in dg.handler.devices:
            await dg.handler.publish_status(device_id)
        await bus.drain()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            listed = (await client.get("/api/v1/devices")).json()
    finally:
        await dg.on_stop()
        await bus.stop()
    assert {d["device_id"] for d in listed} == set(dg.handler.devices)
    assert all(d["state"] is not None for d in listed)
    assert all(datetime.fromisoformat(d["updated_at"]) == START for d in listed)
    assert next(d for d in listed if d["device_id"] == "telescope")["state"] == "parked"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[type[Service]]:
    """Every Service class instantiated while the fixture is active."""
    classes: list[type[Service]] = []
    original = Service.__init__

    def recording(self: Service, ctx: ServiceContext) -> None:
        classes.append(type(self))
        original(self, ctx)

    monkeypatch.setattr(Service, "__init__", recording)
    return classes


def test_the_gateway_builds_no_other_service(tmp_path: Path, built: list[type[Service]]) -> None:
    ctx, _, _ = _context(tmp_path)
    gw = GatewayService(ctx, ROUTES)
    gw.create_app([gw])
    assert built == [GatewayService]


def test_pyros_run_gateway_builds_no_other_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: list[type[Service]]
) -> None:
    ctx, _, _ = _context(tmp_path)
    served: list[tuple[list[Service], FastAPI]] = []

    async def fake_serve(
        ctx_: ServiceContext, services: list[Service], app: FastAPI, *args: Any, **kw: Any
    ) -> None:
        served.append((services, app))

    monkeypatch.setattr(serve, "kafka_context", lambda settings, producer: ctx)
    monkeypatch.setattr(serve, "serve", fake_serve)
    serve.run_service("gateway", Settings(data_dir=tmp_path))
    assert built == [GatewayService]
    ((services, app),) = served
    assert [type(s) for s in services] == [GatewayService]
    assert "/api/v1/devices" in app.openapi()["paths"]
