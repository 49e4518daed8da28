"""monitoring on the in-process bus with SQLite and a simulated clock: weather statuses in,
``pyros.conditions`` out, device health and history in its tables, the routes on the gateway."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import generate_latest
from pyros_common.auth import current_user
from pyros_common.bus import InProcessBus
from pyros_common.bus.port import decode
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import ConditionsChanged, DeviceStatus, Event, SystemChanged
from pyros_common.db import Database
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_gateway.app import GatewayService
from pyros_gateway.routes import ROUTES
from pyros_monitoring.app import MonitoringService
from pyros_monitoring.settings import MonitoringSettings

START = dt.datetime(2026, 12, 16, 4, 0, tzinfo=dt.UTC)
DRY = {"rain": False, "sky_minus_ambient_c": -30.0, "ambient_c": 8.0, "humidity_pct": 40.0, "wind_ms": 4.0}
SOURCES = {"weather": "weather", "plc": "plc", "cloud-sensor": "weather"}


@dataclass
class Rig:
    bus: InProcessBus
    clock: SimulatedClock
    svc: MonitoringService
    app: FastAPI

    def conditions(self) -> list[ConditionsChanged]:
        return [decode(ConditionsChanged.topic, raw) for raw in self.bus.log[ConditionsChanged.topic]]  # type: ignore[misc]

    async def send(self, event: Event, producer: str = "device-gateway") -> None:
        await self.bus.publish(type(event).topic, event.stamped(producer=producer, sent_at=self.clock.now()))
        await self.settle()

    async def settle(self) -> None:
        for _ in range(3):
            await self.bus.drain()
            for _ in range(10):
                await asyncio.sleep(0)

    async def weather(self, **override: dict[str, Any]) -> None:
        for name, kind in SOURCES.items():
            values = {**DRY, **override.get(name, {})}
            await self.send(DeviceStatus(device_id=name, kind=kind, state="idle", values=values))  # type: ignore[arg-type]

    async def devices(self, **states: str) -> None:
        for name, kind in (("telescope", "telescope"), ("dome", "dome"), ("cam-vis", "camera")):
            state = states.get(name.replace("-", "_"), "idle")
            await self.send(
                DeviceStatus(
                    device_id=name,
                    kind=kind,
                    state=state,
                    ok=state != "error",
                    error="" if state != "error" else "jammed",
                )  # type: ignore[arg-type]
            )

    async def run(self, seconds: float, **override: dict[str, Any]) -> None:
        """Weather every 10 s and device statuses for ``seconds`` of clock time."""
        end = self.clock.now() + dt.timedelta(seconds=seconds)
        while self.clock.now() < end:
            await self.weather(**override)
            await self.devices()
            self.clock.advance(10.0)
            await self.settle()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = SimulatedClock(START)
    bus = InProcessBus(clock=clock)
    db = Database(f"sqlite:///{tmp_path / 'pyros.db'}")
    db.upgrade()
    settings = Settings(data_dir=tmp_path, telescope_id="gft")
    ctx = ServiceContext(bus=bus, clock=clock, settings=settings, db=db)
    svc = MonitoringService(
        ctx, settings=MonitoringSettings(confirm_s=30, reopen_after_s=120, stale_after_s=30)
    )
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    gw = GatewayService(ctx, ROUTES, group_suffix="-test")
    for topic, handler in gw.subscriptions():
        bus.subscribe(topic, gw.group, handler)
    app = gw.create_app([gw])
    app.dependency_overrides[current_user] = lambda: SimpleNamespace(username="op", role="admin")
    await bus.start()
    await svc.on_start()
    r = Rig(bus, clock, svc, app)
    await r.settle()
    yield r
    await svc.on_stop()
    await bus.stop()
    db.dispose()


async def test_good_weather_is_safe_and_clear_with_every_source_voting(rig: Rig) -> None:
    assert rig.conditions()[-1].safe is False  # nothing reported yet: unknown is not safe
    await rig.run(30)
    last = rig.conditions()[-1]
    assert last.safe and last.sky == "clear" and last.site_id == "gft-spm", last
    assert {v.source for v in last.votes} == set(SOURCES) and all(v.safe for v in last.votes)
    assert last.quantities["rain"] is False and last.health is not None and last.health.ok


async def test_rain_at_the_plc_alone_closes_after_confirmation_and_reopens_after_the_safe_period(
    rig: Rig,
) -> None:
    await rig.run(30)
    await rig.run(20, plc={"rain": True})
    assert rig.conditions()[-1].safe  # one source: waits for confirmation (30 s)
    await rig.run(20, plc={"rain": True})
    unsafe = rig.conditions()[-1]
    assert not unsafe.safe and "rain" in unsafe.reason and "plc" in unsafe.reason, unsafe.reason
    await rig.run(60)
    waiting = rig.conditions()[-1]
    assert not waiting.safe and waiting.reopen_at is not None and "reopening" in waiting.reason
    await rig.run(80)
    assert rig.conditions()[-1].safe
    async with rig.client() as c:
        doc = (await c.get("/api/v1/site/status")).json()
    assert doc["conditions"]["safe"] is True and doc["conditions"]["sky"] == "clear"


async def test_two_sources_in_the_rain_close_at_once(rig: Rig) -> None:
    await rig.run(30)
    await rig.weather(plc={"rain": True}, weather={"rain": True})
    assert not rig.conditions()[-1].safe


async def test_device_health_history_stale_marking_and_the_site_status(rig: Rig) -> None:
    await rig.run(30)
    await rig.devices(dome="error")
    await rig.devices()
    await rig.send(SystemChanged(state="running", reason="dome opened"), "majordome")
    rig.clock.advance(5.0)  # the tick writes the queued changes
    await rig.settle()
    async with rig.client() as c:
        hist = (await c.get("/api/v1/devices/dome/history")).json()
        assert [h["state"] for h in hist["changes"]] == ["idle", "error", "idle"]
        assert hist["changes"][1]["error"] == "jammed"
        assert (await c.get("/api/v1/devices/nothing/history")).status_code == 404
        doc = (await c.get("/api/v1/site/status")).json()
        assert doc["night"]["state"] == "running" and doc["health"]["ok"] is True
        dome = next(d for d in doc["devices"] if d["device_id"] == "dome")
        assert dome["health"] == "UP" and dome["blocking"] is True
        # the telescope goes quiet; the weather goes on
        for _ in range(5):
            await rig.weather()
            rig.clock.advance(10.0)
            await rig.settle()
        doc = (await c.get("/api/v1/site/status")).json()
        tel = next(d for d in doc["devices"] if d["device_id"] == "telescope")
        assert tel["health"] == "UNKNOWN" and "no status for" in tel["reason"]
        assert not doc["health"]["ok"] and "telescope" in doc["health"]["blocking_not_up"]
        assert "plc" not in doc["health"]["blocking_not_up"]  # it goes on reporting
    published = rig.conditions()[-1].health
    assert published is not None and "telescope" in published.blocking_not_up


async def test_an_operator_excludes_a_lying_source(rig: Rig) -> None:
    await rig.run(30)
    async with rig.client() as c:
        r = await c.put("/api/v1/conditions/sources/plc", json={"excluded": True})
        assert r.status_code == 200, r.text
        await rig.run(60, plc={"rain": True})  # the excluded PLC's rain does not count
        assert rig.conditions()[-1].safe
        doc = (await c.get("/api/v1/conditions")).json()
        assert doc["excluded"] == ["plc"]
        assert next(s for s in doc["sources"] if s["source"] == "plc")["excluded"] is True


async def test_metrics_show_devices_sources_and_the_verdict(rig: Rig) -> None:
    await rig.run(30)
    text = generate_latest(rig.svc.ctx.registry).decode()
    assert 'pyros_conditions_safe{site="gft-spm"} 1.0' in text
    assert 'pyros_weather_source_value{quantity="rain",source="plc"} 0.0' in text
    assert 'pyros_device_up{device="telescope",kind="telescope"} 1.0' in text
    assert 'pyros_weather_source_suspect{source="cloud-sensor"} 0.0' in text


async def test_a_site_station_file_is_a_source_of_its_own(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    bus = InProcessBus(clock=clock)
    db = Database(f"sqlite:///{tmp_path / 'file.db'}")
    db.upgrade()
    station = tmp_path / "station.json"
    ctx = ServiceContext(bus=bus, clock=clock, settings=Settings(data_dir=tmp_path), db=db)
    svc = MonitoringService(ctx, settings=MonitoringSettings(weather_file=station, confirm_s=0))
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    await bus.start()
    await svc.on_start()
    try:
        station.write_text(
            json.dumps({"rain": False, "sky_temp_c": -22.0, "ambient_c": 8.0, "time": START.isoformat()})
        )
        svc.monitor.read_weather_file(station)
        await svc.monitor.evaluate()
        v = svc.monitor.vote.evaluate(clock.now())
        assert v.safe and [s.source for s in v.sources] == ["station-file"]
        station.write_text("{not json")
        os.utime(station, (1e9, 1e9))  # a new modification time: read again, refused, kept quiet
        svc.monitor.read_weather_file(station)
        assert svc.monitor.vote.evaluate(clock.now()).safe  # the last good reading still votes
    finally:
        await svc.on_stop()
        await bus.stop()
        db.dispose()
