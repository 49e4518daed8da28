"""The topic registry: name, key, payload model, producers and consumers."""

from __future__ import annotations

from dataclasses import dataclass

from pyros_common.contracts.envelope import Event
from pyros_common.contracts.events import (
    AlertChanged,
    AnalysisDone,
    ConditionsChanged,
    DeadLetter,
    DeviceCommand,
    DeviceStatus,
    Heartbeat,
    ImageWritten,
    ObservationChanged,
    RequestChanged,
    ScheduleChanged,
    SystemChanged,
    VoeventReceived,
)

SERVICES: tuple[str, ...] = (
    "alerts",
    "routines",
    "scheduler",
    "majordome",
    "monitoring",
    "observer",
    "analyzer",
    "device-gateway",
)


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    model: type[Event]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    summary: str


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(
            "pyros.voevents.raw",
            "IVORN",
            VoeventReceived,
            ("alerts",),
            ("alerts",),
            "One received VOEvent packet, verbatim.",
        ),
        Topic(
            "pyros.alerts",
            "alert id",
            AlertChanged,
            ("alerts",),
            ("scheduler", "monitoring"),
            "A normalised alert: created, updated (better position, new packet) or retracted.",
        ),
        Topic(
            "pyros.requests",
            "request id",
            RequestChanged,
            ("routines", "alerts"),
            ("scheduler", "routines"),
            "Request lifecycle: submitted, accepted, rejected (reason), cancelled, completed.",
        ),
        Topic(
            "pyros.schedule",
            "telescope id",
            ScheduleChanged,
            ("scheduler",),
            ("majordome", "routines"),
            "A new schedule version for a night, with unscheduled sequences and reasons.",
        ),
        Topic(
            "pyros.system",
            "telescope id",
            SystemChanged,
            ("majordome",),
            ("observer", "monitoring", "scheduler"),
            "Night start/end, running/paused and why.",
        ),
        Topic(
            "pyros.device.commands",
            "device id",
            DeviceCommand,
            ("observer", "majordome"),
            ("device-gateway",),
            "Slew, park, expose, filter, focus, dome, abort.",
        ),
        Topic(
            "pyros.device.status",
            "device id",
            DeviceStatus,
            ("device-gateway",),
            ("monitoring", "observer", "majordome"),
            "Device state, position, temperature, errors.",
        ),
        Topic(
            "pyros.conditions",
            "site id",
            ConditionsChanged,
            ("monitoring",),
            ("majordome", "scheduler"),
            "Synthesised observing conditions: safe/unsafe, sky, per-source votes.",
        ),
        Topic(
            "pyros.observations",
            "sequence id",
            ObservationChanged,
            ("observer",),
            ("scheduler", "routines", "majordome"),
            "Sequence and plan execution: started, image taken, completed, interrupted, failed.",
        ),
        Topic(
            "pyros.images",
            "request id",
            ImageWritten,
            ("observer",),
            ("analyzer",),
            "An image is fully written.",
        ),
        Topic(
            "pyros.analysis",
            "request id",
            AnalysisDone,
            ("analyzer",),
            ("routines", "alerts"),
            "Calibration applied, sources found, transient candidate, position.",
        ),
        Topic(
            "pyros.heartbeat",
            "service",
            Heartbeat,
            SERVICES,
            ("monitoring",),
            "Lifecycle state (STANDBY, ENABLED, FAULT) of every service, periodically.",
        ),
        Topic(
            "pyros.dlq",
            "original topic",
            DeadLetter,
            SERVICES,
            ("monitoring",),
            "Dead letters: messages that could not be handled, with original bytes and reason.",
        ),
    )
}

MODEL_BY_TOPIC: dict[str, type[Event]] = {name: t.model for name, t in TOPICS.items()}


def topic_of(event: Event) -> str:
    """The topic an event is published on."""
    return type(event).topic
