"""Event contracts: one pydantic model per topic, one envelope, and the topic registry."""

from pyros_common.contracts.envelope import SCHEMA_VERSION, Event
from pyros_common.contracts.events import (
    AlertChanged,
    AnalysisDone,
    ConditionsChanged,
    ConditionVote,
    DeadLetter,
    DeviceCommand,
    DeviceStatus,
    Heartbeat,
    ImageWritten,
    ObservationChanged,
    RequestChanged,
    ScheduleChanged,
    ScheduledSequence,
    SystemChanged,
    UnscheduledSequence,
    VoeventReceived,
)
from pyros_common.contracts.topics import MODEL_BY_TOPIC, SERVICES, TOPICS, Topic, topic_of

__all__ = [
    "MODEL_BY_TOPIC",
    "SCHEMA_VERSION",
    "SERVICES",
    "TOPICS",
    "AlertChanged",
    "AnalysisDone",
    "ConditionVote",
    "ConditionsChanged",
    "DeadLetter",
    "DeviceCommand",
    "DeviceStatus",
    "Event",
    "Heartbeat",
    "ImageWritten",
    "ObservationChanged",
    "RequestChanged",
    "ScheduleChanged",
    "ScheduledSequence",
    "SystemChanged",
    "Topic",
    "UnscheduledSequence",
    "VoeventReceived",
    "topic_of",
]
