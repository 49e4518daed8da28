"""monitoring's routes (mounted under /api/v1 by the gateway): the site's status in one document,
a device's history, the conditions with every source's vote, an operator's source exclusion.

They read monitoring's tables (``monitoring_*``); stale marking is computed at read time, so a
device that stopped reporting shows UNKNOWN even when monitoring itself is down.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field
from pyros_common.auth import current_user, require_role
from pyros_common.clock import Clock
from pyros_common.db import Database
from pyros_common.domain.sky.sites import get_site
from pyros_common.problem import ProblemError, ProblemRoute, problems

from pyros_monitoring.domain.health import DeviceHealth, DeviceReport, assess, summarise
from pyros_monitoring.settings import MonitoringSettings
from pyros_monitoring.store import Store


class Exclusion(BaseModel):
    excluded: bool = Field(True, description="True takes the source out of the vote; false puts it back.")


@lru_cache(maxsize=8)
def _ephemerides(site: str, night: dt.date) -> dict[str, Any]:
    from pyros_common.domain.sky.ephemerides import night_ephemerides  # astropy: only when asked

    e = night_ephemerides(get_site(site), night)

    def iso(t: dt.datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    return {
        "night": night.isoformat(),
        "sunset": iso(e.sunset),
        "sunrise": iso(e.sunrise),
        "astronomical_dusk": iso(e.astronomical_dusk),
        "astronomical_dawn": iso(e.astronomical_dawn),
        "moonrise": iso(e.moonrise),
        "moonset": iso(e.moonset),
        "moon_illumination": round(e.moon_illumination, 3),
        "moon_ra_deg": round(e.moon_ra_deg, 4),
        "moon_dec_deg": round(e.moon_dec_deg, 4),
    }


def routes(
    *,
    db: Callable[[], Database],
    clock: Clock,
    site: str,
    telescope_id: str,
    settings: MonitoringSettings | None = None,
    auth: Callable[..., Any] = current_user,
    operator_auth: Callable[..., Any] | None = None,
) -> APIRouter:
    cfg = settings or MonitoringSettings()
    site_id = get_site(site).name
    blocking = cfg.blocking(site)
    operator = operator_auth or require_role("admin", "expert")
    r = APIRouter(
        tags=["monitoring"],
        dependencies=[Depends(auth)],
        route_class=ProblemRoute,
        responses=problems(401, 422),
    )

    def store() -> Store:
        return Store(db())

    def devices_now(s: Store, now: dt.datetime) -> tuple[list[DeviceHealth], list[dict[str, Any]]]:
        rows = s.devices()
        reports = {
            d.device_id: DeviceReport(
                d.device_id, d.kind, d.state, d.ok, d.error, d.last_seen, d.temperature_c
            )
            for d in rows
        }
        values = {d.device_id: d.values for d in rows}
        health = assess(reports, now=now, stale_after_s=cfg.stale_after_s, blocking=blocking)
        return health, [
            {
                "device_id": h.device_id,
                "kind": h.kind,
                "health": h.health.value,
                "state": h.state,
                "blocking": h.blocking,
                "reason": h.reason,
                "last_seen": None if h.last_seen is None else h.last_seen.isoformat(),
                "age_s": h.age_s,
                "temperature_c": reports[h.device_id].temperature_c if h.device_id in reports else None,
                "values": values.get(h.device_id, {}),
            }
            for h in health
        ]

    @r.get(
        "/site/status", summary="The site in one document: night, conditions, devices, sequences, last alert"
    )
    def site_status(telescope: str | None = None) -> dict[str, Any]:
        s = store()
        now = clock.now()
        tel = telescope or telescope_id
        cond = s.conditions(site_id)
        status = s.status(tel)
        system = status.system if status else {}
        schedule = status.schedule if status else {}
        assessed, devices = devices_now(s, now)
        health = summarise(assessed)
        current = system.get("current_sequence") if system.get("state") == "running" else None
        upcoming = [
            q
            for q in schedule.get("scheduled", [])
            if q.get("start", "") > now.isoformat()
            and (current is None or q["sequence_id"] != current.get("sequence_id"))
        ]
        night_doc: dict[str, Any] = {
            "state": system.get("state"),
            "reason": system.get("reason", ""),
            "night": system.get("night"),
            "since": system.get("since"),
        }
        if schedule:
            night_doc["start"], night_doc["end"] = schedule.get("night_start"), schedule.get("night_end")
        try:
            from pyros_common.domain.sky.night import tonight

            night_doc["ephemerides"] = _ephemerides(site, tonight(get_site(site), now))
        except Exception as exc:  # ephemerides are a convenience of the view, not worth a 500
            night_doc["ephemerides"] = {"error": str(exc)}
        return {
            "site": site_id,
            "telescope": tel,
            "time": now.isoformat(),
            "night": night_doc,
            "conditions": None
            if cond is None
            else {
                "safe": cond.safe,
                "sky": cond.sky,
                "reason": cond.reason,
                "updated_at": cond.updated_at.isoformat(),
                "age_s": round((now - cond.updated_at).total_seconds(), 1),
                "reopen_at": cond.verdict.get("reopen_at"),
                "quantities": cond.verdict.get("quantities", {}),
                "sources": cond.verdict.get("sources", []),
            },
            "health": {
                "ok": health.ok,
                "up": health.up,
                "down": health.down,
                "unknown": health.unknown,
                "blocking_not_up": list(health.blocking_not_up),
                "reason": health.reason,
            },
            "devices": devices,
            "current_sequence": current,
            "next_sequence": min(upcoming, key=lambda q: q["start"]) if upcoming else None,
            "schedule_version": schedule.get("version"),
            "last_alert": (status.last_alert or None) if status else None,
        }

    @r.get(
        "/devices/{device_id}/history",
        responses=problems(404),
        summary="A device's changes of state, health and error, newest first",
    )
    def device_history(
        device_id: str,
        limit: int = Query(100, ge=1, le=1000),
        before: AwareDatetime | None = Query(
            None, description="Only changes before this time (with its zone)."
        ),
    ) -> dict[str, Any]:
        s = store()
        rows = s.history(device_id, limit=limit, before=before)
        if not rows and device_id not in {d.device_id for d in s.devices()}:
            raise ProblemError(404, f"monitoring has no status of device {device_id!r}")
        return {
            "device_id": device_id,
            "changes": [
                {"at": h.at.isoformat(), "state": h.state, "ok": h.ok, "error": h.error} for h in rows
            ],
        }

    @r.get(
        "/conditions",
        responses=problems(404),
        summary="The site's weather verdict, per quantity and per source",
    )
    def conditions() -> dict[str, Any]:
        cond = store().conditions(site_id)
        if cond is None or not cond.verdict:
            raise ProblemError(404, "monitoring has published no verdict yet")
        return {"site": site_id, **cond.verdict, "excluded": cond.memory.get("excluded", [])}

    @r.put(
        "/conditions/sources/{source}",
        summary="Take a weather source out of the vote, or put it back (admins, experts)",
        responses=problems(403),
    )
    def exclude_source(source: str, body: Exclusion, user: Any = Depends(operator)) -> dict[str, Any]:
        names = store().set_excluded(site_id, source, body.excluded, at=clock.now())
        return {"site": site_id, "source": source, "excluded": body.excluded, "excluded_sources": list(names)}

    return r
