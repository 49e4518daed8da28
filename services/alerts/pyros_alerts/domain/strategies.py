"""Alert strategies as data: YAML files turned into ``pyros.request/1`` documents.

A strategy says how to observe an alert (sequences, albums per detector, plans). Each
file in ``pyros_alerts/strategies/`` is one strategy; ``defaults`` lists the
(mission, packet types) it is the default for, and one file is the ``fallback``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pyros_alerts.domain.model import Alert

STRATEGY_DIR = Path(__file__).resolve().parent.parent / "strategies"
REQUEST_SCHEMA = "pyros.request/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanSpec(_Strict):
    filter: str = Field(min_length=1, description="filter name")
    exposure_s: float = Field(gt=0, description="exposure time, seconds")
    count: int = Field(ge=1, description="number of exposures")
    dither_arcsec: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 0.0)], description="dither offsets (dRA, dDec), arcsec"
    )


class AlbumSpec(_Strict):
    detector: Literal["VIS", "NIR"] = Field(description="camera channel")
    plans: list[PlanSpec] = Field(min_length=1)


class Constraints(_Strict):
    min_altitude_deg: float = Field(20.0, ge=0, le=90, description="minimum altitude, degrees")
    max_airmass: float = Field(3.0, ge=1, description="maximum airmass")


class SequenceSpec(_Strict):
    name: str = Field(min_length=1)
    mandatory: bool = True
    priority_offset: int = Field(0, ge=0, le=10)
    carry_over_nights: int = Field(0, ge=0)
    constraints: Constraints = Field(default_factory=lambda: Constraints())
    albums: list[AlbumSpec] = Field(min_length=1)


class DefaultFor(_Strict):
    mission: str
    packet_types: list[int | str] = Field(min_length=1)


class Strategy(_Strict):
    """One alert strategy, as read from YAML."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    description: str = ""
    fallback: bool = False
    defaults: list[DefaultFor] = Field(default_factory=list)
    program: str = "GRB"
    strategy: str = "best_effort"
    validity_hours: float = Field(gt=0, le=24 * 7, description="request validity after reception, hours")
    sequences: list[SequenceSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _albums_cover_both_channels(self) -> Strategy:
        for seq in self.sequences:
            if {a.detector for a in seq.albums} != {"VIS", "NIR"}:
                raise ValueError(f"sequence {seq.name!r} needs one VIS and one NIR album")
        return self


class StrategyError(ValueError):
    """A strategy file is invalid, or no strategy applies."""


def load_strategies(directory: Path = STRATEGY_DIR) -> dict[str, Strategy]:
    """Read every ``*.yaml`` strategy of ``directory``, keyed by name."""
    found: dict[str, Strategy] = {}
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        try:
            strategy = Strategy.model_validate(data)
        except ValueError as exc:
            raise StrategyError(f"{path.name}: {exc}") from exc
        if strategy.name in found:
            raise StrategyError(f"{path.name}: duplicate strategy name {strategy.name!r}")
        found[strategy.name] = strategy
    _check_defaults(found.values())
    return found


def _check_defaults(strategies: Iterable[Strategy]) -> None:
    seen: dict[tuple[str, str], str] = {}
    fallbacks = []
    for s in strategies:
        if s.fallback:
            fallbacks.append(s.name)
        for d in s.defaults:
            for pt in d.packet_types:
                key = (d.mission, str(pt))
                if key in seen:
                    raise StrategyError(f"{s.name} and {seen[key]} are both default for {key}")
                seen[key] = s.name
    if len(fallbacks) > 1:
        raise StrategyError(f"more than one fallback strategy: {fallbacks}")


def list_strategies(strategies: Mapping[str, Strategy]) -> list[dict[str, Any]]:
    """One summary line per strategy: name, description, defaults, fallback."""
    return [
        {
            "name": s.name,
            "description": s.description,
            "fallback": s.fallback,
            "defaults": [{"mission": d.mission, "packet_types": list(d.packet_types)} for d in s.defaults],
        }
        for s in sorted(strategies.values(), key=lambda s: s.name)
    ]


def pick_strategy(strategies: Mapping[str, Strategy], *, mission: str, packet_type: int | str) -> Strategy:
    """The default strategy for (mission, packet type), else the fallback."""
    for s in strategies.values():
        for d in s.defaults:
            if d.mission == mission and str(packet_type) in {str(p) for p in d.packet_types}:
                return s
    for s in strategies.values():
        if s.fallback:
            return s
    raise StrategyError(f"no strategy for {mission} packet type {packet_type} and no fallback")


def strategy_for_alert(strategies: Mapping[str, Strategy], alert: Alert) -> Strategy:
    """The strategy for the packet that gives the alert its position."""
    best = alert.best
    if best is None:
        raise StrategyError(f"alert {alert.alert_id} has no position")
    return pick_strategy(strategies, mission=best.mission, packet_type=best.packet_type)


def build_request(alert: Alert, strategy: Strategy, *, received_at: datetime) -> dict[str, Any]:
    """The ``pyros.request/1`` document (a plain dict) observing ``alert`` with ``strategy``.

    Valid from ``received_at`` for ``strategy.validity_hours``. Raises ``StrategyError``
    when the alert does not need a request (no position, retracted, not an observation).
    """
    if alert.role != "observation" or alert.status != "active":
        raise StrategyError(f"alert {alert.alert_id} is {alert.role}/{alert.status}: no request")
    best = alert.best
    if best is None or best.ra_deg is None or best.dec_deg is None:
        raise StrategyError(f"alert {alert.alert_id} has no position")
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    request_name = f"{alert.alert_id}-req"  # one request per alert; revisions refine it
    target = {"name": alert.name, "ra_deg": round(best.ra_deg, 6), "dec_deg": round(best.dec_deg, 6)}
    return {
        "schema": REQUEST_SCHEMA,
        "name": request_name,
        "program": strategy.program,
        "strategy": strategy.strategy,
        "kind": "alert",
        "alert_id": alert.alert_id,
        "valid_from": received_at.isoformat(),
        "valid_until": (received_at + timedelta(hours=strategy.validity_hours)).isoformat(),
        "sequences": [
            {
                "name": f"{request_name}-{seq.name}",
                "target": dict(target),
                "date": "tonight",
                "carry_over_nights": seq.carry_over_nights,
                "mandatory": seq.mandatory,
                "priority_offset": seq.priority_offset,
                "constraints": seq.constraints.model_dump(),
                "albums": [
                    {
                        "detector": album.detector,
                        "plans": [
                            {
                                "filter": plan.filter,
                                "exposure_s": plan.exposure_s,
                                "count": plan.count,
                                "dither_arcsec": [[dx, dy] for dx, dy in plan.dither_arcsec],
                            }
                            for plan in album.plans
                        ],
                    }
                    for album in seq.albums
                ],
            }
            for seq in strategy.sequences
        ],
    }
