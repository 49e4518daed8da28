"""Prometheus metrics of the alerts service (registered on the service's registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class AlertsMetrics:
    """Packets per intake and mission, rejections with reason, alerts created, intake-to-publish latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.packets = Counter(
            "pyros_alert_packets",
            "VOEvent packets received, per intake and mission.",
            ["intake", "mission"],
            registry=registry,
        )
        self.rejected = Counter(
            "pyros_alert_rejected", "VOEvent packets rejected, per reason.", ["reason"], registry=registry
        )
        # Exported at zero from the start (see BusMetrics.declare): the HTTP intake is always there.
        self.packets.labels("http", "unknown")
        for reason in REJECTION_REASONS:
            self.rejected.labels(reason)
        self.created = Counter("pyros_alerts_created", "Alerts created.", registry=registry)
        self.intake_to_publish = Histogram(
            "pyros_alert_intake_to_publish_seconds",
            "From a packet's reception by an intake to its alert event being published [s].",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )


REJECTION_REASONS = (
    "dtd_or_entities",
    "too_large",
    "bad_xml",
    "not_voevent_2_0",
    "bad_ivorn",
    "bad_role",
    "bad_time",
    "bad_position",
    "invalid_content",
)


def reason_label(reason: str) -> str:
    """A low-cardinality label for a rejection reason (the full text goes to the DLQ)."""
    r = reason.lower()
    if "dtd" in r or "entit" in r:
        return "dtd_or_entities"
    if "larger than" in r:
        return "too_large"
    if r.startswith("bad xml") or r == "empty packet":
        return "bad_xml"
    if "not a voevent" in r or "voevent version" in r:
        return "not_voevent_2_0"
    if "ivorn" in r:
        return "bad_ivorn"
    if "role" in r:
        return "bad_role"
    if "time" in r:
        return "bad_time"
    if "ra " in r or "dec " in r or "position" in r or "error2radius" in r or "coordinate" in r:
        return "bad_position"
    return "invalid_content"
