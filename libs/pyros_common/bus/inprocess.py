"""In-process transport (asyncio) for ``pyros up`` and service tests.

Events are serialised and decoded exactly as on Kafka, so a payload that Kafka would
reject is rejected here too. Each (topic, group) has one ordered queue, hence order per
key holds; a failing handler is retried, then the message goes to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass

import structlog

from pyros_common.bus.journal import BusJournal
from pyros_common.bus.metrics import BusMetrics, reason_label
from pyros_common.bus.port import (
    Handler,
    PoisonMessage,
    Subscription,
    dead_letter,
    decode,
    encode,
    run_with_retries,
)
from pyros_common.clock import Clock, SystemClock
from pyros_common.contracts import DeadLetter, Event

log = structlog.get_logger("pyros.bus")


@dataclass
class _Message:
    topic: str
    key: bytes | None
    value: bytes | None
    offset: int
    seq: int | None = None  # position in the journal, if there is one


class InProcessBus:
    """At-least-once, ordered per (topic, group) delivery inside one process."""

    def __init__(
        self,
        *,
        metrics: BusMetrics | None = None,
        clock: Clock | None = None,
        producer: str = "pyros",
        retries: int = 3,
        retry_backoff_s: float = 0.01,
        journal: BusJournal | None = None,
    ) -> None:
        self._journal = journal
        # Journal entries older than this bus are replayed at start; newer ones are queued live.
        self._boot_seq = journal.pending_high() if journal is not None else 0
        self._subs: list[Subscription] = []
        self._queues: dict[tuple[str, str], asyncio.Queue[_Message]] = {}
        self._handlers: dict[tuple[str, str], list[Handler]] = defaultdict(list)
        self._tasks: list[asyncio.Task[None]] = []
        self._offsets: dict[str, int] = defaultdict(int)
        self._metrics = metrics
        self._clock = clock or SystemClock()
        self._producer = producer
        self._retries = retries
        self._backoff = retry_backoff_s
        self._started = False
        self.log: dict[str, list[bytes]] = defaultdict(list)  # every published value, per topic

    def subscribe(self, topic: str, group: str, handler: Handler) -> None:
        self._subs.append(Subscription(topic, group, handler))
        if self._metrics:
            self._metrics.declare(group, topic)
        self._handlers[(topic, group)].append(handler)
        if (topic, group) not in self._queues:
            self._queues[(topic, group)] = asyncio.Queue()
            if self._started:
                self._tasks.append(asyncio.create_task(self._consume(topic, group)))

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._journal is not None:
            replayed = 0
            for (topic, group), q in self._queues.items():
                for seq, key, value in self._journal.pending(topic, group):
                    if seq > self._boot_seq:
                        continue
                    q.put_nowait(_Message(topic, key, value, self._offsets[topic], seq))
                    self._offsets[topic] += 1
                    replayed += 1
            if replayed:
                log.warning(
                    "events not handled before the last stop are delivered again",
                    events=replayed,
                    journal=str(self._journal.path),
                )
        for topic, group in self._queues:
            self._tasks.append(asyncio.create_task(self._consume(topic, group)))

    async def stop(self) -> None:
        await self.drain()
        self._started = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()

    async def drain(self) -> None:
        """Wait until every queued message has been handled (tests, shutdown)."""
        while any(q._unfinished_tasks for q in self._queues.values()):  # type: ignore[attr-defined]
            await asyncio.gather(*(q.join() for q in self._queues.values()))

    def idle(self) -> bool:
        """True when no message waits or is being handled (the virtual clock's quiet check)."""
        return not any(q._unfinished_tasks for q in self._queues.values())  # type: ignore[attr-defined]

    async def publish(self, topic: str, event: Event, key: str | None = None) -> None:
        if not event.producer:
            event = event.stamped(producer=self._producer, sent_at=self._clock.now())
        await self.publish_raw(topic, encode(event), (key or event.key()).encode())
        if self._metrics:
            self._metrics.produced.labels(event.producer, topic).inc()

    async def publish_raw(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        """Put raw bytes on a topic (used by tests to inject poison messages)."""
        self.log[topic].append(value or b"")
        offset = self._offsets[topic]
        self._offsets[topic] += 1
        readers = [q for (t, _group), q in self._queues.items() if t == topic]
        # On disk before it is queued: a caller that acknowledges after publish acknowledged it durably.
        seq = self._journal.append(topic, key, value) if self._journal is not None and readers else None
        for q in readers:
            q.put_nowait(_Message(topic, key, value, offset, seq))

    async def _consume(self, topic: str, group: str) -> None:
        q = self._queues[(topic, group)]
        while True:
            msg = await q.get()
            try:
                await self._handle(msg, group)
                if self._journal is not None and msg.seq is not None:  # after the effect, as Kafka commits
                    self._journal.commit(topic, group, msg.seq)
                    if self._journal.due_prune():
                        self._journal.prune(self._queues)
            finally:
                q.task_done()

    async def _handle(self, msg: _Message, group: str) -> None:
        try:
            event = decode(msg.topic, msg.value)
        except PoisonMessage as exc:
            await self._dead_letter(msg, group, str(exc), attempts=1)
            return
        handlers = self._handlers[(msg.topic, group)]
        handler = handlers[msg.offset % len(handlers)]
        failure = await run_with_retries(
            handler,
            event,
            topic=msg.topic,
            group=group,
            retries=self._retries,
            backoff_s=self._backoff,
            clock=self._clock,
            metrics=self._metrics,
        )
        if failure is not None:
            await self._dead_letter(msg, group, failure[0], attempts=failure[1])

    async def _dead_letter(self, msg: _Message, group: str, reason: str, attempts: int) -> None:
        log.error("dead letter", topic=msg.topic, group=group, reason=reason)
        if self._metrics:
            self._metrics.dlq.labels(group, msg.topic, reason_label(reason)).inc()
        dl: DeadLetter = dead_letter(
            topic=msg.topic,
            raw=msg.value,
            key=msg.key,
            reason=reason,
            group=group,
            attempts=attempts,
            offset=msg.offset,
        )
        if msg.topic != DeadLetter.topic:
            await self.publish(DeadLetter.topic, dl.stamped(producer=group, sent_at=self._clock.now()))
