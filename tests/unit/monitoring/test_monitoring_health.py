"""Device health (pure): UP, DOWN, UNKNOWN after the stale time, blocking devices, the summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyros_monitoring.domain.health import DeviceReport, Health, assess, health_of, summarise
from pyros_monitoring.domain.weather import quantities_from_values

T0 = datetime(2026, 12, 16, 4, 0, tzinfo=UTC)


def report(
    device: str, state: str = "idle", ok: bool = True, error: str = "", age_s: float = 0
) -> DeviceReport:
    return DeviceReport(device, "telescope", state, ok, error, T0 - timedelta(seconds=age_s))


def test_up_down_and_stale() -> None:
    assert health_of(report("t"), now=T0, stale_after_s=30) == (Health.UP, "")
    assert health_of(report("t", "error", False, "jammed"), now=T0, stale_after_s=30) == (
        Health.DOWN,
        "jammed",
    )
    assert health_of(report("t", "offline"), now=T0, stale_after_s=30)[0] is Health.DOWN
    h, why = health_of(report("t", age_s=31), now=T0, stale_after_s=30)
    assert h is Health.UNKNOWN and "no status for 31 s" in why
    assert health_of(None, now=T0, stale_after_s=30)[0] is Health.UNKNOWN


def test_a_blocking_device_that_never_reported_is_unknown_and_makes_the_site_unhealthy() -> None:
    devices = assess(
        {"telescope": report("telescope"), "cam-nir": report("cam-nir", "error", False, "cold")},
        now=T0,
        stale_after_s=30,
        blocking=["telescope", "dome"],
    )
    by_id = {d.device_id: d for d in devices}
    assert by_id["dome"].health is Health.UNKNOWN and by_id["dome"].blocking
    assert by_id["cam-nir"].health is Health.DOWN and not by_id["cam-nir"].blocking
    s = summarise(devices)
    assert not s.ok and s.blocking_not_up == ("dome",) and (s.up, s.down, s.unknown) == (1, 1, 1)
    fine = summarise(
        assess({"telescope": report("telescope")}, now=T0, stale_after_s=30, blocking=["telescope"])
    )
    assert fine.ok and fine.reason == ""


def test_changes_are_state_health_or_error() -> None:
    a = report("t")
    assert a.changed_from(None)
    assert not DeviceReport("t", "telescope", "idle", True, "", T0 + timedelta(seconds=5)).changed_from(a)
    assert report("t", "slewing").changed_from(a)
    assert report("t", ok=False).changed_from(a)


def test_bad_readings_are_ignored_not_trusted() -> None:
    q = quantities_from_values(
        {"wind_ms": float("nan"), "humidity_pct": "wet", "rain": 0.4, "ambient_c": True}
    )
    assert q == {"rain": True}
