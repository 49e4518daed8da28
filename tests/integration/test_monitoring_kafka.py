"""monitoring on real Kafka and PostgreSQL: the simulated PLC goes to rain, ``pyros.conditions``
turns unsafe, majordome pauses the night, and the pause shows in ``GET /api/v1/site/status``.

device-gateway (with its simulators), monitoring, majordome and the gateway each run on a bus of
their own (one Kafka client each, one topic prefix for the test) in this process, on one clock
that runs at real speed from inside a night, so the test can make the PLC's rain sensor wet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pyros_common.auth import current_user
from pyros_common.bus.kafka import KafkaBus
from pyros_common.bus.metrics import BusMetrics
from pyros_common.bus.port import Handler
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import ConditionsChanged, Event, SystemChanged
from pyros_common.db import Database
from pyros_common.domain.sky.night import night_bounds
from pyros_common.domain.sky.sites import SITES
from pyros_common.runtime.host import ServiceHost
from pyros_common.runtime.service import Service, ServiceContext
from pyros_common.settings import Settings
from pyros_device_gateway.app import DeviceGatewayService
from pyros_device_gateway.settings import GatewaySettings
from pyros_gateway.app import GatewayService
from pyros_gateway.routes import ROUTES
from pyros_majordome.app import MajordomeService
from pyros_majordome.settings import MajordomeSettings
from pyros_monitoring.app import MonitoringService
from pyros_monitoring.settings import MonitoringSettings
from pyros_simulators.weather import PlcSource

pytestmark = pytest.mark.integration

NIGHT = dt.date(2026, 12, 15)
DUSK, _DAWN = night_bounds(SITES["gft-spm"], NIGHT)
TIMEOUT_S = 60.0


class Watcher(Service):
    """A consumer of its own: what went on pyros.conditions and pyros.system."""

    name = "watcher"
    needs_db = False

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self.conditions: list[ConditionsChanged] = []
        self.system: list[SystemChanged] = []

    def subscriptions(self) -> list[tuple[str, Handler]]:
        async def on_conditions(e: Event) -> None:
            assert isinstance(e, ConditionsChanged)
            self.conditions.append(e)

        async def on_system(e: Event) -> None:
            assert isinstance(e, SystemChanged)
            self.system.append(e)

        return [(ConditionsChanged.topic, on_conditions), (SystemChanged.topic, on_system)]


@dataclass
class Site:
    hosts: list[ServiceHost]
    gateway: DeviceGatewayService
    watcher: Watcher
    app: FastAPI

    @property
    def plc(self) -> PlcSource:
        assert self.gateway.simulators is not None
        plc = self.gateway.simulators.plc
        assert plc is not None
        return plc

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")


async def until(what: str, probe: Any, report: Any) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while loop.time() < deadline:
        got = await probe() if asyncio.iscoroutinefunction(probe) else probe()
        if got:
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {TIMEOUT_S:.0f} s; {report()}")


@pytest.fixture
async def site(kafka_bootstrap: str, topic_prefix: str, pg_db: Database) -> AsyncIterator[Site]:
    clock = SimulatedClock(DUSK + dt.timedelta(hours=1), speed=1.0)
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, database_url=pg_db.url, topic_partitions=1
    )

    def ctx(name: str, db: Database | None = None) -> ServiceContext:
        registry = CollectorRegistry()
        metrics = BusMetrics(registry)
        bus = KafkaBus(
            bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            partitions=1,
            metrics=metrics,
            clock=clock,
            producer=name,
        )
        return ServiceContext(
            bus=bus, clock=clock, settings=settings, db=db, registry=registry, bus_metrics=metrics
        )

    gw_ctx = ctx("device-gateway")
    devices = DeviceGatewayService(
        gw_ctx, gateway_settings=GatewaySettings(status_period_s=1.0, weather_period_s=1.0)
    )
    mon = MonitoringService(
        ctx("monitoring", pg_db),
        settings=MonitoringSettings(
            confirm_s=3.0, evaluate_period_s=0.5, weather_max_age_s=10.0, reopen_after_s=600
        ),
    )
    major = MajordomeService(
        ctx("majordome"), settings=MajordomeSettings(assume_safe_without_conditions=False)
    )
    watcher = Watcher(ctx("watcher"))
    api_ctx = ctx("gateway", pg_db)
    api = GatewayService(api_ctx, ROUTES, group_suffix="-it")
    app = api.create_app([api])
    app.dependency_overrides[current_user] = lambda: SimpleNamespace(username="it", role="admin")
    hosts = [ServiceHost(c.ctx, [c]) for c in (watcher, api, mon, major, devices)]
    for h in hosts:
        await h.start()
    for h in hosts:
        assert isinstance(h.ctx.bus, KafkaBus)
        await h.ctx.bus.wait_assigned()
    try:
        yield Site(hosts, devices, watcher, app)
    finally:
        for h in reversed(hosts):
            await h.stop()


async def test_rain_at_the_plc_makes_conditions_unsafe_and_majordome_pauses(site: Site) -> None:
    w = site.watcher

    def report() -> str:
        c = w.conditions[-1] if w.conditions else None
        s = w.system[-1] if w.system else None
        return f"last conditions {c and (c.safe, c.reason)}; last system {s and (s.state, s.reason)}"

    await until(
        "safe conditions from the simulated sources", lambda: w.conditions and w.conditions[-1].safe, report
    )
    first_safe = w.conditions[-1]
    assert first_safe.sky == "clear" and {v.source for v in first_safe.votes} >= {
        "plc",
        "weather",
        "cloud-sensor",
    }
    await until("majordome running", lambda: w.system and w.system[-1].state == "running", report)

    seen_c, seen_s = len(w.conditions), len(w.system)
    site.plc.lie(rain=True)  # the PLC's rain sensor is wet; the others are dry
    unsafe = await until(
        "pyros.conditions unsafe",
        lambda: next((c for c in w.conditions[seen_c:] if not c.safe), None),
        report,
    )
    assert "rain" in unsafe.reason and "plc" in unsafe.reason, unsafe.reason
    paused = await until(
        "majordome paused", lambda: next((s for s in w.system[seen_s:] if s.state == "paused"), None), report
    )
    assert "unsafe conditions" in paused.reason and "rain" in paused.reason, paused.reason

    async def status() -> dict[str, Any] | None:
        async with site.client() as c:
            doc: dict[str, Any] = (await c.get("/api/v1/site/status")).json()
        return doc if doc["night"]["state"] == "paused" else None

    doc = await until("the pause in /api/v1/site/status", status, report)
    assert doc["conditions"]["safe"] is False and "rain" in doc["conditions"]["reason"]
    assert "unsafe conditions" in doc["night"]["reason"]
    plc = next(s for s in doc["conditions"]["sources"] if s["source"] == "plc")
    assert plc["values"]["rain"] is True and plc["safe"] is False
    assert {d["device_id"] for d in doc["devices"]} >= {"telescope", "dome", "plc"}
