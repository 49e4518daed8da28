"""Alert strategies as data: YAML files turned into ``pyros.request/1`` documents.

A strategy says how to observe an alert (sequences, albums per detector, plans). Each
file in ``pyros_alerts/strategies/`` is one strategy; ``defaults`` lists the
(mission, packet types) it is the default for, and one file is the ``fallback``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyros_common.domain.requests import Album, SequenceConstraints
from pyros_common.domain.requests.document import SCHEMA_ID, RequestDocument

from pyros_alerts.domain.model import Alert

STRATEGY_DIR = Path(__file__).resolve().parent.parent / "strategies"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SequenceSpec(_Strict):
    """One sequence of a strategy; its fields are checked by the request model itself at load."""

    name: str = Field(min_length=1)
    mandatory: bool = True
    priority_offset: int = Field(0, description="added to the strategy's priority (request model bounds)")
    carry_over_nights: int = Field(0, ge=0)
    constraints: SequenceConstraints = Field(
        default_factory=SequenceConstraints, description="observing limits; the domain's defaults"
    )
    albums: list[Album] = Field(min_length=1)


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
    priority: int = Field(50, description="request priority (0-100, higher first); alerts outrank routines")
    quota: Literal["book", "override"] = Field(
        "book", description="override: accepted even over the program's quota (booked all the same)"
    )
    validity_hours: float = Field(gt=0, le=24 * 7, description="request validity after reception, hours")
    decay_index: float | None = Field(
        None,
        ge=0,
        le=5,
        description="the alert's value falls as (1 + t/600 s)^-index from its reception (afterglow: 1); "
        "null: no decay",
    )
    sequences: list[SequenceSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _albums_cover_both_channels(self) -> Strategy:
        for seq in self.sequences:
            if {a.detector.value for a in seq.albums} != {"VIS", "NIR"}:
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
        except ValidationError as exc:
            raise StrategyError(f"{path}: {_fields(exc)}") from exc
        except ValueError as exc:
            raise StrategyError(f"{path}: {exc}") from exc
        try:
            document(
                strategy,
                name="check-req",
                alert_id="check",
                target_name="check",
                ra_deg=0.0,
                dec_deg=0.0,
                received_at=datetime(2000, 1, 1, tzinfo=UTC),
            )
        except ValidationError as exc:
            raise StrategyError(f"{path}: the request model refuses its output: {_fields(exc)}") from exc
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


def _fields(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(x) for x in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors()
    )


def document(
    strategy: Strategy,
    *,
    name: str,
    alert_id: str,
    target_name: str,
    ra_deg: float,
    dec_deg: float,
    received_at: datetime,
) -> RequestDocument:
    """The request document ``strategy`` makes for one position (pydantic ValidationError if refused)."""
    target = {"name": target_name, "ra_deg": round(ra_deg, 6), "dec_deg": round(dec_deg, 6)}
    return RequestDocument.model_validate(
        {
            "schema": SCHEMA_ID,
            "name": name,
            "program": strategy.program,
            "strategy": strategy.strategy,
            "kind": "alert",
            "alert_id": alert_id,
            "priority": strategy.priority,
            "quota_override": strategy.quota == "override",
            "valid_from": received_at,
            "valid_until": received_at + timedelta(hours=strategy.validity_hours),
            "decay_index": strategy.decay_index,
            "sequences": [
                {
                    "name": f"{name}-{seq.name}",
                    "target": target,
                    "date": "tonight",
                    "carry_over_nights": seq.carry_over_nights,
                    "mandatory": seq.mandatory,
                    "priority_offset": seq.priority_offset,
                    "constraints": seq.constraints,
                    "albums": seq.albums,
                }
                for seq in strategy.sequences
            ],
        }
    )


def build_request(alert: Alert, strategy: Strategy, *, received_at: datetime) -> RequestDocument:
    """The ``pyros.request/1`` document observing ``alert`` with ``strategy``.

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
    try:
        return document(
            strategy,
            name=f"{alert.alert_id}-req",  # one request per alert; revisions refine it
            alert_id=alert.alert_id,
            target_name=alert.name,
            ra_deg=best.ra_deg,
            dec_deg=best.dec_deg,
            received_at=received_at,
        )
    except ValidationError as exc:
        raise StrategyError(f"strategy {strategy.name}: the request model refuses: {_fields(exc)}") from exc
