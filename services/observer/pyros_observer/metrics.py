"""Prometheus metrics of the observer (registered on the service's registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class ObserverMetrics:
    """Images written per detector, sequences per outcome, plan failures per reason."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.images = Counter(
            "pyros_observer_images_written",
            "Images filed and announced, per detector.",
            ["detector"],
            registry=registry,
        )
        self.sequences = Counter(
            "pyros_observer_sequences",
            "Sequences (and calibrations) ended, per outcome: completed, failed, interrupted.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.plan_failures = Counter(
            "pyros_observer_plan_failures",
            "Plans that failed, per reason: timeout, device_error, device_offline, image_filing, other.",
            ["reason"],
            registry=registry,
        )
        self.albums_dropped = Counter(
            "pyros_observer_albums_dropped",
            "Albums dropped because their camera failed.",
            ["detector"],
            registry=registry,
        )
