"""Prometheus metrics of monitoring: devices, weather sources and the vote, conditions,
the schedule, alerts by mission and the alert-to-slew latency (Prometheus naming, base units)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class MonitoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._sequences: dict[str, str] = {}
        self.status_events = Counter(
            "pyros_device_status_events", "Device status events monitoring received.", registry=registry
        )
        self.device_up = Gauge(
            "pyros_device_up",
            "1 when the device is UP (ok, recent status), else 0.",
            ["device", "kind"],
            registry=registry,
        )
        self.device_slewing = Gauge(
            "pyros_device_slewing", "1 while the device reports slewing.", ["device"], registry=registry
        )
        self.device_temperature = Gauge(
            "pyros_device_temperature_celsius",
            "Last reported sensor temperature [°C].",
            ["device"],
            registry=registry,
        )
        self.weather_value = Gauge(
            "pyros_weather_source_value",
            "Last reading of a weather source per quantity (rain: 1 or 0; units in docs/monitoring.md).",
            ["source", "quantity"],
            registry=registry,
        )
        self.weather_suspect = Gauge(
            "pyros_weather_source_suspect",
            "1 when the source is suspect (it no longer votes).",
            ["source"],
            registry=registry,
        )
        self.weather_voting = Gauge(
            "pyros_weather_source_voting",
            "1 when the source votes (fresh, not suspect, not excluded).",
            ["source"],
            registry=registry,
        )
        self.vote = Gauge(
            "pyros_weather_vote",
            "The vote per quantity (rain: 1 or 0).",
            ["site", "quantity"],
            registry=registry,
        )
        self.safe = Gauge(
            "pyros_conditions_safe", "1 when monitoring says safe to observe.", ["site"], registry=registry
        )
        self.changes = Counter(
            "pyros_conditions_changes", "Verdicts published on pyros.conditions.", ["site"], registry=registry
        )
        self.sequences = Gauge(
            "pyros_schedule_sequences",
            "Sequences of the latest schedule, scheduled or unscheduled (with the reason).",
            ["telescope", "state", "reason"],
            registry=registry,
        )
        self.alerts = Counter(
            "pyros_alerts_by_mission",
            "Alert changes seen on pyros.alerts, per mission and action.",
            ["mission", "action"],
            registry=registry,
        )
        self.alert_to_slew = Histogram(
            "pyros_alert_to_slew_seconds",
            "From an alert on pyros.alerts to the telescope slewing for its request [s].",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )

        self.night_state = Gauge(
            "pyros_night_state",
            "1 for the night state majordome reports (pyros.system).",
            ["telescope", "state"],
            registry=registry,
        )
        self.sequence = Gauge(
            "pyros_current_sequence",
            '1 for the sequence majordome dispatched and runs now (sequence="" and 0 when none).',
            ["telescope", "sequence"],
            registry=registry,
        )
        self.last_alert = Gauge(
            "pyros_last_alert_timestamp_seconds",
            "When the last alert change was seen (Unix time) [s].",
            ["telescope"],
            registry=registry,
        )

    def declare(self, *, site: str, telescope: str) -> None:
        """Export the site's series from the start (a labelled series appears only once set)."""
        self.safe.labels(site).set(0)
        self.changes.labels(site)
        for state in ("scheduled", "unscheduled"):
            self.sequences.labels(telescope, state, "").set(0)
        for state in NIGHT_STATES:
            self.night_state.labels(telescope, state).set(0)
        self.sequence.labels(telescope, "").set(0)
        self.last_alert.labels(telescope).set(0)
        for mission in MISSIONS:
            self.alerts.labels(mission, "created")

    def set_night_state(self, telescope: str, state: str) -> None:
        for s in {*NIGHT_STATES, state}:
            self.night_state.labels(telescope, s).set(1 if s == state else 0)

    def set_sequence(self, telescope: str, sequence: str | None) -> None:
        """One series per telescope: the running sequence, or "" (0) when none runs."""
        old = self._sequences.get(telescope)
        if old is not None and old != (sequence or ""):
            self.sequence.remove(telescope, old)
        self._sequences[telescope] = sequence or ""
        self.sequence.labels(telescope, sequence or "").set(1 if sequence else 0)


NIGHT_STATES = ("day", "dusk", "running", "paused", "dawn", "closing")
MISSIONS = ("SVOM", "Swift", "Fermi", "INTEGRAL", "LVK", "IceCube", "MAXI", "SNEWS")


def reason_label(reason: str) -> str:
    """A low-cardinality label from a scheduler reason ("no free slot in its windows", ...)."""
    head = reason.split(":")[0].split("(")[0].split(";")[0]
    words = [w for w in head.split() if not any(c.isdigit() for c in w)]
    return " ".join(words)[:48] or "other"
