"""The bus port: publish and subscribe, the same for every transport."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
from pydantic import ValidationError

from pyros_common.bus.metrics import BusMetrics
from pyros_common.clock import Clock
from pyros_common.contracts import MODEL_BY_TOPIC, DeadLetter, Event

_log = structlog.get_logger("pyros.bus")

Handler = Callable[[Event], Awaitable[None]]


class PoisonMessage(Exception):
    """A message that can never be handled (bad JSON, fails validation); goes to the DLQ at once."""


@dataclass(frozen=True)
class Subscription:
    topic: str
    group: str
    handler: Handler


class Bus(Protocol):
    """What services use to talk: the same handlers run on Kafka and in process."""

    async def start(self) -> None:
        """Connect, create topics, start consuming for every subscription."""
        ...

    async def stop(self) -> None:
        """Finish the in-flight events, commit, disconnect."""
        ...

    async def publish(self, topic: str, event: Event, key: str | None = None) -> None:
        """Send ``event`` on ``topic`` keyed by ``key`` (default: the topic's key field)."""
        ...

    def subscribe(self, topic: str, group: str, handler: Handler) -> None:
        """Call ``handler`` for every event on ``topic``; one delivery per ``group``."""
        ...


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def decode(topic: str, raw: bytes | None) -> Event:
    """Bytes to the topic's model; raises PoisonMessage with a reason a person can read."""
    model = MODEL_BY_TOPIC.get(topic)
    if model is None:
        raise PoisonMessage(f"unknown topic {topic!r}")
    if raw is None:
        raise PoisonMessage("empty message (tombstone) on an event topic")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise PoisonMessage(f"invalid JSON: {first['msg']}") from exc
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise PoisonMessage(
            f"payload fails {model.__name__} validation at {where}: {first['msg']}"
            + (f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else "")
        ) from exc


def dead_letter(
    *,
    topic: str,
    raw: bytes | None,
    key: bytes | None,
    reason: str,
    group: str,
    attempts: int,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    return DeadLetter(
        original_topic=topic,
        original_key=key.decode(errors="replace") if key is not None else None,
        original_partition=partition,
        original_offset=offset,
        original_bytes_b64=base64.b64encode(raw or b"").decode(),
        reason=reason[:2000],
        consumer_group=group,
        attempts=attempts,
    )


async def run_with_retries(
    handler: Handler,
    event: Event,
    *,
    topic: str,
    group: str,
    retries: int,
    backoff_s: float,
    clock: Clock,
    metrics: BusMetrics | None,
) -> tuple[str, int] | None:
    """Call ``handler`` up to ``retries`` times with exponential back-off.

    Returns None on success, else (reason, attempts) for the dead letter. Both transports
    share this, so retry semantics, metrics and logs are the same on Kafka and in process.
    """
    attempt = 0
    while True:
        attempt += 1
        t0 = clock.monotonic()
        # The handler's logs carry the event's ids (bind then reset: cheaper than
        # bound_contextvars, which first reads the whole context to restore it).
        tokens = structlog.contextvars.bind_contextvars(
            correlation_id=event.correlation_id, event_id=str(event.event_id)
        )
        try:
            await handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if metrics:
                metrics.errors.labels(group, topic).inc()
            _log.warning(
                "handler failed",
                topic=topic,
                group=group,
                attempt=attempt,
                error=repr(exc),
                correlation_id=event.correlation_id,
            )
            if attempt >= retries:
                return f"handler failed after {attempt} attempts: {exc!r}", attempt
            await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
            continue
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        if metrics:
            consumed, latency = metrics.handled(group, topic)
            consumed.inc()
            latency.observe(clock.monotonic() - t0)
        return None
