"""Store.record_changes: one history row per change in order, each device's row as its last
change left it, new and known devices in one call (SQLite here, PostgreSQL too when it runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyros_common.db import Database
from pyros_monitoring.domain.health import DeviceReport
from pyros_monitoring.store import Store

T0 = datetime(2026, 12, 16, 3, 0, tzinfo=UTC)


def check(db: Database) -> None:
    store = Store(db)
    store.record_changes([(DeviceReport("dome", "dome", "idle", True, "", T0), {"shutter": "closed"})])
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    store.record_changes(
        [
            (DeviceReport("telescope", "telescope", "slewing", True, "", t1, 4.0), {"command": "slew"}),
            (DeviceReport("dome", "dome", "busy", True, "", t1), {"shutter": "opening"}),
            (DeviceReport("telescope", "telescope", "error", False, "jammed", t2, 5.0), {"command": "slew"}),
        ]
    )
    store.record_changes([])  # nothing: no transaction
    rows = {r.device_id: r for r in store.devices()}
    assert (rows["telescope"].state, rows["telescope"].ok, rows["telescope"].error) == (
        "error",
        False,
        "jammed",
    )
    assert rows["telescope"].last_seen == rows["telescope"].changed_at == t2
    assert rows["telescope"].temperature_c == 5.0 and rows["telescope"].values == {"command": "slew"}
    assert (rows["dome"].state, rows["dome"].values, rows["dome"].changed_at) == (
        "busy",
        {"shutter": "opening"},
        t1,
    )
    assert [(h.state, h.at) for h in store.history("telescope", limit=10)] == [("error", t2), ("slewing", t1)]
    assert [h.state for h in store.history("dome", limit=10)] == ["busy", "idle"]


def test_changes_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade()
    try:
        check(db)
    finally:
        db.dispose()


@pytest.mark.integration
def test_changes_on_postgresql(pg_db: Database) -> None:
    check(pg_db)
