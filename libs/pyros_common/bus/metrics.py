"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BusMetrics:
    """Counters and histograms of the bus, labelled by service (consumer group) and topic."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter(
            "pyros_events_consumed", "Events handled successfully.", ["service", "topic"], registry=registry
        )
        self.produced = Counter(
            "pyros_events_produced", "Events published.", ["service", "topic"], registry=registry
        )
        self.errors = Counter(
            "pyros_handler_errors",
            "Handler failures (each attempt).",
            ["service", "topic"],
            registry=registry,
        )
        self.dlq = Counter(
            "pyros_dlq",
            "Messages sent to the dead-letter topic.",
            ["service", "topic", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "pyros_handler_seconds",
            "Handler latency [s].",
            ["service", "topic"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )

        self.lag = Gauge(
            "pyros_consumer_lag_messages",
            "Messages of the topic not yet handled by the consumer group (Kafka: high watermark - position).",
            ["service", "topic"],
            registry=registry,
        )

        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def handled(self, service: str, topic: str) -> tuple[Any, Any]:
        """The (consumed counter, latency histogram) series of one consumer, looked up once:
        ``labels()`` on every event cost more than the rest of the bookkeeping together."""
        key = (service, topic)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (
                self.consumed.labels(service, topic),
                self.latency.labels(service, topic),
            )
        return found

    def declare(self, service: str, topic: str) -> None:
        """Export a consumer's error and dead-letter series at zero from its subscription on
        (a labelled counter has no sample until its first increment, which dashboards and
        alert rules would read as a missing metric)."""
        self.consumed.labels(service, topic)
        self.errors.labels(service, topic)
        for reason in DLQ_REASONS:
            self.dlq.labels(service, topic, reason)
        self.lag.labels(service, topic).set(0)


DLQ_REASONS = ("invalid_json", "invalid_payload", "handler_failed", "other")


def reason_label(reason: str) -> str:
    """A low-cardinality label from a free-text reason."""
    if reason.startswith("invalid JSON"):
        return "invalid_json"
    if "validation" in reason:
        return "invalid_payload"
    if reason.startswith("handler failed"):
        return "handler_failed"
    return "other"
