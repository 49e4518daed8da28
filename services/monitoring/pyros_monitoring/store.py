"""monitoring's tables (``monitoring_*``): device status and history, conditions, site status.

A status that changes a device's state, health or error is queued and written with its history
row: on Kafka before the batch it came in returns (so before its offset is committed: a crash
loses no change), one event at a time (the in-process bus) at the next tick (every
``evaluate_period_s``: on a crash up to one tick of history can be lost). The unchanged periodic
statuses only move ``last_seen``, written at the tick; after a crash the next statuses bring
the current state back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pyros_common.db import Database
from pyros_common.db.models import DeviceHistory, MonitoredDevice, SiteConditions, SiteStatus
from sqlalchemy import bindparam, insert, select, update

from pyros_monitoring.domain.health import DeviceReport
from pyros_monitoring.domain.weather import VoteMemory


def _report(row: MonitoredDevice) -> DeviceReport:
    return DeviceReport(
        device_id=row.device_id,
        kind=row.kind,
        state=row.state,
        ok=row.ok,
        error=row.error,
        last_seen=row.last_seen,
        temperature_c=row.temperature_c,
    )


_TOUCH = (
    update(MonitoredDevice)
    .where(MonitoredDevice.device_id == bindparam("b_id"))
    .values(last_seen=bindparam("b_seen"), temperature_c=bindparam("b_temp"), values=bindparam("b_values"))
)

_CHANGE = (
    update(MonitoredDevice)
    .where(MonitoredDevice.device_id == bindparam("b_id"))
    .values(
        kind=bindparam("b_kind"),
        state=bindparam("b_state"),
        ok=bindparam("b_ok"),
        error=bindparam("b_error"),
        temperature_c=bindparam("b_temp"),
        values=bindparam("b_values"),
        last_seen=bindparam("b_seen"),
        changed_at=bindparam("b_seen"),
    )
)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- devices -----------------------------------------------------------------------------

    def load_devices(self) -> dict[str, DeviceReport]:
        with self.db.session() as s:
            return {r.device_id: _report(r) for r in s.scalars(select(MonitoredDevice))}

    def record_changes(self, changes: Iterable[tuple[DeviceReport, Mapping[str, Any]]]) -> None:
        """Changes in order: one history row each, and each device's current row as its last
        change left it; in one transaction of a few statements whatever the number of changes
        (one ORM get and flush per change was most of a Kafka batch's cost)."""
        batch = list(changes)
        if not batch:
            return
        last: dict[str, tuple[DeviceReport, Mapping[str, Any]]] = {}
        for r, values in batch:
            last[r.device_id] = (r, values)
        rows = [
            {
                "b_id": r.device_id,
                "b_kind": r.kind,
                "b_state": r.state,
                "b_ok": r.ok,
                "b_error": r.error,
                "b_temp": r.temperature_c,
                "b_values": dict(values),
                "b_seen": r.last_seen,
            }
            for r, values in last.values()
        ]
        with self.db.session() as s:
            conn = s.connection()
            have = set(
                conn.execute(
                    select(MonitoredDevice.device_id).where(MonitoredDevice.device_id.in_(list(last)))
                ).scalars()
            )
            old = [row for row in rows if row["b_id"] in have]
            if old:
                conn.execute(_CHANGE, old)
            new = [row for row in rows if row["b_id"] not in have]
            if new:
                conn.execute(
                    insert(MonitoredDevice),
                    [
                        {
                            "device_id": row["b_id"],
                            "kind": row["b_kind"],
                            "state": row["b_state"],
                            "ok": row["b_ok"],
                            "error": row["b_error"],
                            "temperature_c": row["b_temp"],
                            "values": row["b_values"],
                            "last_seen": row["b_seen"],
                            "changed_at": row["b_seen"],
                        }
                        for row in new
                    ],
                )
            conn.execute(
                insert(DeviceHistory),
                [
                    {
                        "device_id": r.device_id,
                        "at": r.last_seen,
                        "state": r.state,
                        "ok": r.ok,
                        "error": r.error,
                    }
                    for r, _ in batch
                ],
            )

    def touch(self, seen: Iterable[tuple[DeviceReport, Mapping[str, Any]]]) -> None:
        """Unchanged statuses: last_seen, temperature and readings only."""
        batch = list(seen)
        if not batch:
            return
        rows = [
            {"b_id": r.device_id, "b_seen": r.last_seen, "b_temp": r.temperature_c, "b_values": dict(values)}
            for r, values in batch
        ]
        with self.db.session() as s:  # one executemany of a compiled-once UPDATE, not one ORM update each
            s.connection().execute(_TOUCH, rows)

    def devices(self) -> list[MonitoredDevice]:
        with self.db.session() as s:
            return list(s.scalars(select(MonitoredDevice).order_by(MonitoredDevice.device_id)))

    def history(self, device_id: str, *, limit: int, before: datetime | None = None) -> list[DeviceHistory]:
        with self.db.session() as s:
            q = select(DeviceHistory).where(DeviceHistory.device_id == device_id)
            if before is not None:
                q = q.where(DeviceHistory.at < before)
            return list(s.scalars(q.order_by(DeviceHistory.at.desc(), DeviceHistory.id.desc()).limit(limit)))

    # --- conditions --------------------------------------------------------------------------

    def load_memory(self, site_id: str) -> VoteMemory | None:
        with self.db.session() as s:
            row = s.get(SiteConditions, site_id)
            return None if row is None else memory_of(row.memory)

    def excluded(self, site_id: str) -> tuple[str, ...] | None:
        with self.db.session() as s:
            row = s.get(SiteConditions, site_id)
            return None if row is None else tuple(row.memory.get("excluded", ()))

    def save_conditions(
        self, site_id: str, *, verdict: dict[str, Any], memory: VoteMemory, at: datetime
    ) -> None:
        with self.db.session() as s:
            row = s.get(SiteConditions, site_id)
            if row is None:
                row = SiteConditions(site_id=site_id)
                s.add(row)
            row.safe, row.sky, row.reason = verdict["safe"], verdict["sky"], verdict["reason"]
            doc = memory_doc(memory)
            if row.memory:  # the exclusions are the operators': keep what the database says
                doc["excluded"] = list(row.memory.get("excluded", ()))
            row.verdict, row.memory, row.updated_at = verdict, doc, at

    def set_excluded(self, site_id: str, source: str, excluded: bool, *, at: datetime) -> tuple[str, ...]:
        """An operator's exclusion, read by the running vote at its next tick."""
        with self.db.session() as s:
            row = s.get(SiteConditions, site_id)
            if row is None:
                row = SiteConditions(
                    site_id=site_id,
                    safe=False,
                    sky="unknown",
                    reason="no verdict yet",
                    verdict={},
                    memory={},
                    updated_at=at,
                )
                s.add(row)
            names = set(row.memory.get("excluded", ()))
            (names.add if excluded else names.discard)(source)
            row.memory = {**row.memory, "excluded": sorted(names)}
            return tuple(sorted(names))

    def conditions(self, site_id: str) -> SiteConditions | None:
        with self.db.session() as s:
            return s.get(SiteConditions, site_id)

    # --- the site's status -------------------------------------------------------------------

    def save_status(self, telescope_id: str, at: datetime, **parts: dict[str, Any]) -> None:
        with self.db.session() as s:
            row = s.get(SiteStatus, telescope_id)
            if row is None:
                row = SiteStatus(telescope_id=telescope_id, system={}, schedule={}, last_alert={})
                s.add(row)
            for name, doc in parts.items():
                setattr(row, name, doc)
            row.updated_at = at

    def status(self, telescope_id: str) -> SiteStatus | None:
        with self.db.session() as s:
            return s.get(SiteStatus, telescope_id)


def memory_doc(m: VoteMemory) -> dict[str, Any]:
    return {
        "ever_safe": m.ever_safe,
        "last_unsafe_at": None if m.last_unsafe_at is None else m.last_unsafe_at.isoformat(),
        "excluded": list(m.excluded),
    }


def memory_of(doc: Mapping[str, Any]) -> VoteMemory:
    at = doc.get("last_unsafe_at")
    return VoteMemory(
        ever_safe=bool(doc.get("ever_safe", False)),
        last_unsafe_at=None if not at else datetime.fromisoformat(at),
        excluded=tuple(doc.get("excluded", ())),
    )
