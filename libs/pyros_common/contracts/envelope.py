"""The envelope every PyROS event carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Event(BaseModel):
    """Base of every event: the envelope fields, then the topic's own fields.

    Within a schema version, changes are additive only; a breaking change gets a new
    ``schema_version``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: ClassVar[str] = ""
    key_field: ClassVar[str] = ""

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this event's schema.", ge=1)
    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4, description="Unique id of this event; handlers are idempotent on it."
    )
    sent_at: AwareDatetime = Field(
        default_factory=lambda: datetime(1970, 1, 1, tzinfo=UTC),
        description="When the producer sent the event (UTC, from the producer's clock port).",
    )
    producer: str = Field("", description="Name of the service that produced the event.")
    correlation_id: str = Field(
        "", description="Id shared by every event caused by one origin (an alert, a request, a night)."
    )
    telescope_id: str = Field("gft", description="Telescope (or node) the event concerns.")

    def key(self) -> str:
        """The Kafka key of this event (the topic's key field)."""
        value: Any = getattr(self, self.key_field) if self.key_field else self.event_id
        return str(value)

    def stamped(self, *, producer: str, sent_at: datetime, correlation_id: str | None = None) -> Self:
        """A copy with the envelope filled in by the sending service."""
        update: dict[str, Any] = {"producer": producer, "sent_at": sent_at}
        if correlation_id is not None:
            update["correlation_id"] = correlation_id
        elif not self.correlation_id:
            update["correlation_id"] = str(self.event_id)
        return self.model_copy(update=update)
