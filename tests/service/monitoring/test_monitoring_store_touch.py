"""The periodic write of unchanged statuses (Store.touch) updates exactly the devices it names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyros_common.db import Database
from pyros_common.db.models import DeviceHistory
from pyros_monitoring.domain.health import DeviceReport
from pyros_monitoring.store import Store
from sqlalchemy import func, select

T0 = datetime(2026, 12, 16, 3, 0, tzinfo=UTC)


def test_touch_updates_last_seen_temperature_and_readings_only(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade()
    store = Store(db)
    cam = DeviceReport("cam-vis", "camera", "idle", True, "", T0, -20.0)
    dome = DeviceReport("dome", "dome", "open", True, "", T0)
    store.record_changes([(cam, {"ccd": -20.0}), (dome, {"shutter": "open"})])
    later = T0 + timedelta(seconds=10)
    store.touch([(replace(cam, last_seen=later, temperature_c=-21.5), {"ccd": -21.5})])
    got = store.load_devices()
    assert got["cam-vis"].last_seen == later and got["cam-vis"].temperature_c == -21.5
    assert got["cam-vis"].state == "idle"
    assert got["dome"].last_seen == T0  # not named: untouched
    rows = {r.device_id: r for r in store.devices()}
    assert rows["cam-vis"].values == {"ccd": -21.5} and rows["dome"].values == {"shutter": "open"}
    with db.session() as s:  # a touch is not a change: no history row
        assert s.scalar(select(func.count()).select_from(DeviceHistory)) == 2
    store.touch([])  # nothing to write: no transaction
    db.dispose()
