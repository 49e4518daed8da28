"""Persistence of alerts, packets and strategies (tables owned by alerts)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyros_common.db.models import Alert as AlertRow
from pyros_common.db.models import AlertPacket as PacketRow
from pyros_common.db.models import Strategy as StrategyRow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyros_alerts.domain import Alert, Strategy, StrategyError, load_strategies
from pyros_alerts.domain.strategies import _check_defaults

# --- alerts and packets ----------------------------------------------------------------


def load_alerts(session: Session) -> list[Alert]:
    """Every stored alert, as the domain knows it (to rebuild the AlertBook)."""
    rows = session.scalars(select(AlertRow).order_by(AlertRow.created_at, AlertRow.id))
    return [Alert.from_dict(r.state) for r in rows]


def save_alert(session: Session, alert: Alert, *, now: datetime) -> None:
    """Insert or update the row of ``alert``."""
    row = session.get(AlertRow, alert.alert_id)
    best = alert.best
    status = alert.status if alert.role == "observation" else alert.role
    values: dict[str, Any] = {
        "event_key": alert.packets[0].event_key,
        "missions": list(alert.missions),
        "status": status,
        "trigger_time": alert.trigger_time,
        "ra_deg": None if best is None else best.ra_deg,
        "dec_deg": None if best is None else best.dec_deg,
        "error_deg": None if best is None else best.error_deg,
        "is_grb": alert.is_grb,
        "request_id": alert.request_id,
        "state": alert.to_dict(),
        "updated_at": now,
    }
    if row is None:
        session.add(AlertRow(id=alert.alert_id, created_at=now, **values))
    else:
        for k, v in values.items():
            setattr(row, k, v)


def packet_key(session: Session, ivorn: str, event_id: str) -> str:
    """The primary key for a packet row: its IVORN, unless unreadable or already taken."""
    if ivorn and ivorn != "unknown" and session.get(PacketRow, ivorn) is None:
        return ivorn
    return f"{ivorn or 'unknown'}#{event_id}"[:512]


def add_packet(
    session: Session,
    *,
    ivorn: str,
    event_id: str,
    alert_id: str | None,
    intake: str,
    received_at: datetime,
    mission: str,
    packet_type: str,
    role: str,
    action: str,
    reason: str,
    xml: str,
) -> None:
    """Record one received packet (accepted or not)."""
    session.add(
        PacketRow(
            ivorn=packet_key(session, ivorn, event_id),
            alert_id=alert_id,
            intake=intake,
            received_at=received_at,
            mission=mission[:32],
            packet_type=packet_type[:32],
            role=role[:16],
            action=action,
            reason=reason,
            xml=xml,
        )
    )


@dataclass(frozen=True)
class AlertPage:
    total: int
    items: list[AlertRow]


def query_alerts(
    session: Session,
    *,
    since: datetime | None,
    until: datetime | None,
    mission: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> AlertPage:
    """Alerts by trigger time (newest first), filtered."""
    q = select(AlertRow)
    if since is not None:
        q = q.where(AlertRow.trigger_time >= since)
    if until is not None:
        q = q.where(AlertRow.trigger_time < until)
    if status is not None:
        q = q.where(AlertRow.status == status)
    rows = list(session.scalars(q.order_by(AlertRow.trigger_time.desc(), AlertRow.id)))
    if mission is not None:  # JSON list: filtered here to stay portable (SQLite, PostgreSQL)
        rows = [r for r in rows if mission in r.missions]
    return AlertPage(total=len(rows), items=rows[offset : offset + limit])


def alert_packets(session: Session, alert_id: str) -> list[PacketRow]:
    return list(
        session.scalars(
            select(PacketRow).where(PacketRow.alert_id == alert_id).order_by(PacketRow.received_at)
        )
    )


# --- strategies ------------------------------------------------------------------------


def _row_values(strategy: Strategy) -> dict[str, Any]:
    first = strategy.defaults[0] if strategy.defaults else None
    return {
        "mission": first.mission if first else "*",
        "packet_type": ",".join(str(p) for p in first.packet_types)[:32] if first else "*",
        "is_default": bool(strategy.defaults),
        "body": strategy.model_dump(mode="json"),
    }


def seed_strategies(session: Session, strategies: Mapping[str, Strategy] | None = None) -> int:
    """Store the YAML strategies when the table is empty; returns how many were added."""
    if session.scalar(select(func.count()).select_from(StrategyRow)):
        return 0
    found = strategies if strategies is not None else load_strategies()
    for s in found.values():
        session.add(StrategyRow(name=s.name, active=True, **_row_values(s)))
    return len(found)


def strategy_rows(session: Session) -> list[StrategyRow]:
    return list(session.scalars(select(StrategyRow).order_by(StrategyRow.name)))


_VALIDATED: dict[str, Strategy] = {}  # canonical JSON of a stored body -> its validated strategy


def _validated(body: dict[str, Any]) -> Strategy:
    """``Strategy.model_validate(body)``, once per distinct body: every packet looks up the
    strategies, and validating them all each time cost most of a packet's handling."""
    key = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    found = _VALIDATED.get(key)
    if found is None:
        found = Strategy.model_validate(body)
        if len(_VALIDATED) > 1024:
            _VALIDATED.clear()
        _VALIDATED[key] = found
    return found


def active_strategies(session: Session) -> dict[str, Strategy]:
    """The strategies the service may use (active rows), validated."""
    return {r.name: _validated(r.body) for r in strategy_rows(session) if r.active}


def set_default(session: Session, *, mission: str, packet_type: str, name: str) -> StrategyRow:
    """Make strategy ``name`` the default for (mission, packet type); others lose that default."""
    rows = {r.name: r for r in strategy_rows(session)}
    if name not in rows:
        raise KeyError(name)
    updated: dict[str, Strategy] = {}
    for r in rows.values():
        body = dict(r.body)
        defaults = []
        for d in body.get("defaults", []):
            types = [p for p in d["packet_types"] if not (d["mission"] == mission and str(p) == packet_type)]
            if types:
                defaults.append({"mission": d["mission"], "packet_types": types})
        if r.name == name:
            pt: int | str = int(packet_type) if packet_type.lstrip("-").isdigit() else packet_type
            defaults.append({"mission": mission, "packet_types": [pt]})
        body["defaults"] = defaults
        updated[r.name] = Strategy.model_validate(body)
    _check_defaults(updated.values())
    for r in rows.values():
        vals = _row_values(updated[r.name])
        for k, v in vals.items():
            setattr(r, k, v)
    return rows[name]


def set_active(session: Session, *, name: str, active: bool) -> StrategyRow:
    """Switch a strategy on or off; an inactive strategy is never picked (its defaults fall back)."""
    row = session.get(StrategyRow, name)
    if row is None:
        raise KeyError(name)
    if not active and Strategy.model_validate(row.body).fallback:
        raise StrategyError("the fallback strategy cannot be switched off")
    row.active = active
    return row
