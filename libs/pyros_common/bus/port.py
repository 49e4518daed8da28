"""The bus port: publish and subscribe, the same for every transport."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import structlog
from pydantic import ValidationError

from pyros_common.bus.metrics import BusMetrics
from pyros_common.clock import Clock
from pyros_common.contracts import MODEL_BY_TOPIC, DeadLetter, Event

_log = structlog.get_logger("pyros.bus")

Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[Sequence[Event]], Awaitable[None]]


class Batched:
    """A per-event handler that can also take every event of one poll at once.

    ``many(events)`` must have the effect of ``one(e)`` for each event in order (it may coalesce
    what only matters once, such as periodic readings), and be done with that effect when it
    returns: a transport that delivers batches (Kafka) commits the offsets of the whole batch
    after it. Everywhere else the object is the per-event handler ``one``.
    """

    __slots__ = ("many", "one")

    def __init__(self, one: Handler, many: BatchHandler) -> None:
        self.one = one
        self.many = many

    async def __call__(self, event: Event) -> None:
        await self.one(event)


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
    return decoder(topic)(raw)


@cache
def decoder(topic: str) -> Callable[[bytes | None], Event]:
    """``decode`` for one topic, its model's validator looked up once (consumers' hot path)."""
    model = MODEL_BY_TOPIC.get(topic)
    if model is None:

        def unknown(raw: bytes | None) -> Event:
            raise PoisonMessage(f"unknown topic {topic!r}")

        return unknown
    validate = model.__pydantic_validator__.validate_json  # what model_validate_json calls

    def decode_one(raw: bytes | None) -> Event:
        if raw is None:
            raise PoisonMessage("empty message (tombstone) on an event topic")
        try:
            event: Event = validate(raw)
            return event
        except ValidationError as exc:
            raise _poison(model, exc) from exc

    return decode_one


def _poison(model: type[Event], exc: ValidationError) -> PoisonMessage:
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return PoisonMessage(f"invalid JSON: {first['msg']}")
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    return PoisonMessage(
        f"payload fails {model.__name__} validation at {where}: {first['msg']}"
        + (f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else "")
    )


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


async def _attempts(
    call: Callable[[], Awaitable[None]],
    *,
    topic: str,
    group: str,
    retries: int,
    backoff_s: float,
    clock: Clock,
    metrics: BusMetrics | None,
    what: str,
    events: int = 1,
    **fields: object,
) -> tuple[int, Exception | None]:
    """Await ``call()`` up to ``retries`` times with exponential back-off, counting and logging
    each failure as ``what``; on success ``events`` are counted consumed and the successful
    call's time observed. Returns (attempts, the last error or None)."""
    attempt = 0
    while True:
        attempt += 1
        t0 = clock.monotonic()
        try:
            await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if metrics:
                metrics.errors.labels(group, topic).inc()
            _log.warning(
                what, topic=topic, group=group, attempt=attempt, events=events, error=repr(exc), **fields
            )
            if attempt >= retries:
                return attempt, exc
            await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
            continue
        if metrics:
            consumed, latency = metrics.handled(group, topic)
            consumed.inc(events)
            latency.observe(clock.monotonic() - t0)
        return attempt, None


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
    # The handler's logs carry the event's ids (bind then reset: cheaper than
    # bound_contextvars, which first reads the whole context to restore it).
    tokens = structlog.contextvars.bind_contextvars(
        correlation_id=event.correlation_id, event_id=str(event.event_id)
    )
    try:
        attempts, error = await _attempts(
            lambda: handler(event),
            topic=topic,
            group=group,
            retries=retries,
            backoff_s=backoff_s,
            clock=clock,
            metrics=metrics,
            what="handler failed",
            correlation_id=event.correlation_id,
        )
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    if error is not None:
        return f"handler failed after {attempts} attempts: {error!r}", attempts
    return None


async def run_batch(
    handler: Batched,
    events: Sequence[Event],
    *,
    topic: str,
    group: str,
    retries: int,
    backoff_s: float,
    clock: Clock,
    metrics: BusMetrics | None,
) -> bool:
    """Call ``handler.many`` on ``events`` up to ``retries`` times with exponential back-off.

    True on success: the consumed counter counts every event, the latency histogram observes the
    one call (a batch's events are done when it returns). False once every attempt failed: the
    caller then runs the events one by one (``run_with_retries`` on ``handler.one``), so that only
    an event that fails on its own goes to the dead letters. No log context per event: a batch
    handler that logs about one event names its ids itself.
    """
    _, error = await _attempts(
        lambda: handler.many(events),
        topic=topic,
        group=group,
        retries=retries,
        backoff_s=backoff_s,
        clock=clock,
        metrics=metrics,
        what="batch handler failed",
        events=len(events),
    )
    return error is None
