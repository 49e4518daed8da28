"""monitoring's first events can come before its on_start (the bus consumes from its own start,
and on Kafka starting every consumer of a group takes a while): what they changed survives it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import DeviceStatus
from pyros_common.db import Database
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_monitoring.app import MonitoringService

START = dt.datetime(2026, 12, 16, 4, 0, tzinfo=dt.UTC)


async def test_a_status_handled_before_on_start_is_kept(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    db = Database(f"sqlite:///{tmp_path / 'pyros.db'}")
    db.upgrade()
    ctx = ServiceContext(
        bus=InProcessBus(clock=clock), clock=clock, settings=Settings(data_dir=tmp_path), db=db
    )
    svc = MonitoringService(ctx)
    handlers = dict(svc.subscriptions())
    status = DeviceStatus(device_id="telescope", kind="telescope", state="slewing").stamped(
        producer="device-gateway", sent_at=START
    )
    await handlers[DeviceStatus.topic](status)
    await svc.on_start()
    try:
        assert svc.monitor.reports["telescope"].state == "slewing"
        svc.monitor.flush()
        assert [r.device_id for r in svc.monitor.store.devices()] == ["telescope"]
    finally:
        await svc.on_stop()
        db.dispose()
