"""Device health (pure): what each device's last status says, stale marking, blocking devices.

A device is UP when its last status is ok and not offline or in error, DOWN when it is, and
UNKNOWN when no status came for ``stale_after_s`` (or never). A blocking device that is not UP
makes the site unhealthy: majordome pauses on the same devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

BAD_STATES = frozenset({"offline", "error"})


class Health(StrEnum):
    UP = "UP"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class DeviceReport:
    """The last status of one device as monitoring keeps it."""

    device_id: str
    kind: str
    state: str
    ok: bool
    error: str
    last_seen: datetime
    temperature_c: float | None = None

    def changed_from(self, other: DeviceReport | None) -> bool:
        """True when this status is a change worth a history row (state, health or error)."""
        return other is None or (self.state, self.ok, self.error) != (other.state, other.ok, other.error)


@dataclass(frozen=True)
class DeviceHealth:
    device_id: str
    kind: str
    health: Health
    state: str
    blocking: bool
    reason: str
    last_seen: datetime | None
    age_s: float | None


def health_of(report: DeviceReport | None, *, now: datetime, stale_after_s: float) -> tuple[Health, str]:
    """UP, DOWN or UNKNOWN, and why (empty when UP)."""
    if report is None:
        return Health.UNKNOWN, "no status yet"
    age = (now - report.last_seen).total_seconds()
    if age > stale_after_s:
        return Health.UNKNOWN, f"no status for {age:.0f} s (stale after {stale_after_s:g} s)"
    if not report.ok or report.state in BAD_STATES:
        return Health.DOWN, report.error or report.state
    return Health.UP, ""


def assess(
    reports: Mapping[str, DeviceReport],
    *,
    now: datetime,
    stale_after_s: float,
    blocking: Iterable[str],
) -> list[DeviceHealth]:
    """Every known device, and every blocking one even if it never reported, by id."""
    block = frozenset(blocking)
    out = []
    for device_id in sorted(set(reports) | block):
        r = reports.get(device_id)
        health, why = health_of(r, now=now, stale_after_s=stale_after_s)
        out.append(
            DeviceHealth(
                device_id=device_id,
                kind=r.kind if r else "",
                health=health,
                state=r.state if r else "unknown",
                blocking=device_id in block,
                reason=why,
                last_seen=r.last_seen if r else None,
                age_s=None if r is None else round((now - r.last_seen).total_seconds(), 1),
            )
        )
    return out


@dataclass(frozen=True)
class HealthSummary:
    ok: bool  # every blocking device UP
    up: int
    down: int
    unknown: int
    blocking_not_up: tuple[str, ...]
    reason: str


def summarise(devices: Iterable[DeviceHealth]) -> HealthSummary:
    ds = list(devices)
    bad = tuple(
        f"{d.device_id} {d.health.value}" + (f" ({d.reason})" if d.reason else "")
        for d in ds
        if d.blocking and d.health is not Health.UP
    )
    return HealthSummary(
        ok=not bad,
        up=sum(d.health is Health.UP for d in ds),
        down=sum(d.health is Health.DOWN for d in ds),
        unknown=sum(d.health is Health.UNKNOWN for d in ds),
        blocking_not_up=tuple(d.device_id for d in ds if d.blocking and d.health is not Health.UP),
        reason="; ".join(bad),
    )
