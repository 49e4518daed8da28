"""Fixtures for the alerts service tests: the real service on the in-process bus and SQLite."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pyros_alerts.app import AlertsService
from pyros_common.bus.inprocess import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.db import Database
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings

T0 = datetime(2026, 4, 21, 4, 20, tzinfo=UTC)


def allow_all() -> None:
    """Stand-in for the routines auth dependency: lets every caller in."""


@dataclass
class Harness:
    service: AlertsService
    bus: InProcessBus
    db: Database
    clock: SimulatedClock
    registry: CollectorRegistry

    def published(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.bus.log[topic]]

    def dead_letters(self) -> list[dict[str, Any]]:
        out = self.published("pyros.dlq")
        for d in out:
            d["original"] = base64.b64decode(d["original_bytes_b64"])
        return out

    async def send(self, raw: bytes, intake: str = "vtp") -> None:
        await self.service.receive(raw, intake)
        await self.bus.drain()

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0


async def make_harness(db_url: str) -> Harness:
    db = Database(db_url)
    db.upgrade()
    clock = SimulatedClock(T0)
    bus = InProcessBus(clock=clock, retries=2, retry_backoff_s=0.0)
    registry = CollectorRegistry()
    settings = Settings(database_url=db_url, vtp_host=None, gcn_bootstrap=None, gcn_client_id=None)
    ctx = ServiceContext(bus=bus, clock=clock, settings=settings, db=db, registry=registry)
    svc = AlertsService(ctx, auth_dependency=allow_all)
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    await bus.start()
    await svc.on_start()
    return Harness(svc, bus, db, clock, registry)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alerts.db'}"


@pytest.fixture
async def alerts(db_url: str) -> AsyncIterator[Harness]:
    h = await make_harness(db_url)
    try:
        yield h
    finally:
        await h.service.on_stop()
        await h.bus.stop()
        h.db.dispose()
