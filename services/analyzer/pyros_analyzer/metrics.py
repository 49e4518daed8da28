"""Prometheus metrics of the analyzer."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class AnalyzerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.analysed = Counter(
            "pyros_analyzer_images_total",
            "Light images analysed, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.solve_failures = Counter(
            "pyros_analyzer_solve_failures_total",
            "Images without astrometry, by reason.",
            ["reason"],
            registry=registry,
        )
        self.missing_masters = Counter(
            "pyros_analyzer_missing_masters_total",
            "Images analysed without a full set of masters.",
            registry=registry,
        )
        self.masters = Counter(
            "pyros_analyzer_masters_total", "Masters built, by kind.", ["kind"], registry=registry
        )
        self.voevents = Counter(
            "pyros_analyzer_voevents_total", "VOEvents written for candidates.", registry=registry
        )
        self.seconds = Histogram(
            "pyros_analyzer_processing_seconds",
            "Wall time of one image's pipeline [s].",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=registry,
        )
        self.latency = Histogram(
            "pyros_analyzer_latency_seconds",
            "Clock time from an image's event to its analysis [s].",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60),
            registry=registry,
        )
