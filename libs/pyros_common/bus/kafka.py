"""Kafka transport (aiokafka).

- idempotent producer (acks=all);
- one consumer per subscription, in its consumer group, auto-commit off;
- offsets are committed only after the handler's effect (or after the dead letter is sent);
- a failing handler is retried with back-off, then the message goes to ``pyros.dlq`` with its
  original bytes and the reason; a message that cannot be decoded goes there at once;
- a ``Batched`` handler gets every event of one poll (all partitions) in one call; if that call
  keeps failing, the events are handled one by one as above, so that only a failing event is
  dead-lettered;
- topics are created at start with the configured partitions and replication;
- ``topic_prefix`` maps logical names (``pyros.alerts``) to physical ones, so that tests and
  several nodes can share a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from pyros_common.bus.metrics import BusMetrics, reason_label
from pyros_common.bus.port import (
    Batched,
    Handler,
    PoisonMessage,
    Subscription,
    dead_letter,
    decoder,
    encode,
    run_batch,
    run_with_retries,
)
from pyros_common.clock import Clock, SystemClock
from pyros_common.contracts import TOPICS, DeadLetter, Event

log = structlog.get_logger("pyros.bus.kafka")

POLL_TIMEOUT_MS = 200


async def poll(
    consumer: AIOKafkaConsumer, max_records: int
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """One round of records, the way every PyROS consumer takes them (benchmarks use it too).

    Always ``getmany``, never ``getone``: ``getone`` leaves a drained partition's result
    buffered until its next call, so the fetch aiokafka parks at the broker meanwhile leaves that
    partition out, and a record produced to it waits until that fetch expires (up to
    ``fetch_max_wait_ms``, 500 ms). Measured on our broker, one record every 0.3-1 s on a
    3-partition topic: getone p99 467 ms, getmany p99 2.5 ms.
    """
    batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = await consumer.getmany(
        timeout_ms=POLL_TIMEOUT_MS, max_records=max_records
    )
    if batches:
        # getmany drained these partitions: let the fetcher ask for their next records now,
        # so that the broker's answer travels while this batch is handled
        await asyncio.sleep(0)
    return batches


async def poll_some(consumer: AIOKafkaConsumer, max_records: int = 500) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of the next round that has any, taken as ``poll`` takes them (benchmarks).

    ``max_records`` as the bus's: with 1, getmany leaves the partition's drained result
    buffered (it cannot tell the batch is over) and the stall above comes back."""
    while True:
        got = [rec for records in (await poll(consumer, max_records)).values() for rec in records]
        if got:
            return got


class KafkaUnreachable(RuntimeError):
    """The broker did not answer."""


async def check_kafka(bootstrap: str, timeout_s: float = 5.0) -> None:
    """Raise KafkaUnreachable unless the broker answers a metadata request in time."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    # The probe's own failure is reported by the caller in one sentence; aiokafka's log is noise here.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except (TimeoutError, KafkaError, OSError) as exc:
        raise KafkaUnreachable(f"Kafka at {bootstrap} is unreachable ({type(exc).__name__})") from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        quiet.setLevel(level)


class KafkaBus:
    """The production transport."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic_prefix: str = "",
        partitions: int = 3,
        replication: int = 1,
        metrics: BusMetrics | None = None,
        clock: Clock | None = None,
        producer: str = "pyros",
        retries: int = 3,
        retry_backoff_s: float = 0.2,
        max_batch: int = 500,
        max_batch_many: int = 5000,
        extra_topics: Iterable[str] = (),
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = topic_prefix
        self._partitions = partitions
        self._replication = replication
        self._metrics = metrics
        self._clock = clock or SystemClock()
        self._producer_name = producer
        self._retries = retries
        self._backoff = retry_backoff_s
        self._max_batch = max_batch
        # A Batched handler takes a whole poll: more records per poll means fewer offset commits
        # (one broker round trip each, the cost that bounds a consumer's rate here).
        self._max_batch_many = max_batch_many
        self._extra_topics = tuple(extra_topics)
        self._subs: list[Subscription] = []
        self._producer: AIOKafkaProducer | None = None
        self._consumers: list[AIOKafkaConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._assigned = asyncio.Event()
        # Consumers that died and are being restarted: (group, topic) -> why. Never silent: the
        # host turns an entry into FAULT for the service of that group (heartbeat, /readyz).
        self.faults: dict[tuple[str, str], str] = {}
        self.health_listeners: list[Callable[[str, str | None], None]] = []
        self.restart_backoff_s = (1.0, 30.0)  # first and longest pause before a restart [s]

    def physical(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    def logical(self, physical: str) -> str:
        return physical[len(self.prefix) :] if self.prefix and physical.startswith(self.prefix) else physical

    def subscribe(self, topic: str, group: str, handler: Handler) -> None:
        if self._producer is not None:
            raise RuntimeError("subscribe before start()")
        self._subs.append(Subscription(topic, group, handler))
        if self._metrics:
            self._metrics.declare(group, topic)

    async def create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            names = [self.physical(t) for t in (*TOPICS, *self._extra_topics)]
            existing = set(await admin.list_topics())
            new = [
                NewTopic(n, num_partitions=self._partitions, replication_factor=self._replication)
                for n in names
                if n not in existing
            ]
            if new:
                try:
                    await admin.create_topics(new)
                except TopicAlreadyExistsError:
                    pass
                log.info("topics created", topics=[t.name for t in new])
        finally:
            await admin.close()

    async def start(self) -> None:
        await self.create_topics()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all", linger_ms=0
        )
        await self._producer.start()
        consumers = [
            AIOKafkaConsumer(
                self.physical(sub.topic),
                bootstrap_servers=self.bootstrap,
                group_id=f"{self.prefix}{sub.group}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
            for sub in self._subs
        ]
        self._consumers.extend(consumers)
        # Together: start() waits for the group's assignment, and each member that joins alone
        # makes the others rejoin at their next heartbeat (a service with four subscriptions
        # took 10 s to start one by one, its first consumer already handling events meanwhile).
        await asyncio.gather(*(c.start() for c in consumers))
        for consumer, sub in zip(consumers, self._subs, strict=True):
            self._tasks.append(
                asyncio.create_task(self._supervise(consumer, sub), name=f"consume:{sub.topic}")
            )

    async def wait_assigned(self, timeout_s: float = 30.0) -> None:
        """Wait until every consumer has partitions (tests)."""

        async def _all() -> None:
            while not all(c.assignment() for c in self._consumers):  # noqa: ASYNC110 (polled)
                await asyncio.sleep(0.05)

        await asyncio.wait_for(_all(), timeout_s)

    async def stop(self) -> None:
        self._stopping.set()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        for c in self._consumers:
            with contextlib.suppress(Exception):
                await c.stop()
        self._consumers.clear()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, topic: str, event: Event, key: str | None = None) -> None:
        if not event.producer:
            event = event.stamped(producer=self._producer_name, sent_at=self._clock.now())
        await self.publish_raw(topic, encode(event), (key or event.key()).encode())
        if self._metrics:
            self._metrics.produced.labels(event.producer, topic).inc()

    async def publish_raw(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        if self._producer is None:
            raise RuntimeError("bus not started")
        await self._producer.send_and_wait(self.physical(topic), value=value, key=key)

    def _health(self, sub: Subscription, reason: str | None) -> None:
        key = (sub.group, sub.topic)
        if reason is None:
            if self.faults.pop(key, None) is None:
                return
        else:
            self.faults[key] = reason
        group_faults = [f"{t}: {r}" for (g, t), r in self.faults.items() if g == sub.group]
        for listener in self.health_listeners:
            listener(sub.group, "; ".join(group_faults) if group_faults else None)

    async def _supervise(self, consumer: AIOKafkaConsumer, sub: Subscription) -> None:
        """Run the consumer; if it ends for any reason but a stop, say so and restart it with
        back-off from the last committed offsets (nothing handled-but-uncommitted is lost)."""
        first, longest = self.restart_backoff_s
        delay = first
        while not self._stopping.is_set():
            try:
                await self._consume(consumer, sub, on_progress=lambda: self._health(sub, None))
                if self._stopping.is_set():
                    return
                why = "the consumer loop ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                why = f"consumer failed: {exc!r}"
            log.error(
                "consumer down, restarting", topic=sub.topic, group=sub.group, reason=why, retry_in_s=delay
            )
            self._health(sub, why)
            await self._clock.sleep(delay)
            delay = min(delay * 2, longest)
            try:
                for tp in consumer.assignment():
                    committed = await consumer.committed(tp)
                    if committed is not None:
                        consumer.seek(tp, committed)
                    else:  # nothing committed yet: from the start, as a new member would
                        await consumer.seek_to_beginning(tp)
            except Exception as exc:  # the broker may still be away: the next round tells
                log.warning("offsets not restored yet", topic=sub.topic, error=repr(exc))

    async def _consume(
        self, consumer: AIOKafkaConsumer, sub: Subscription, on_progress: Callable[[], None] | None = None
    ) -> None:
        lags: dict[int, int] = {}  # partition -> messages behind, after the last batch
        max_records = self._max_batch_many if isinstance(sub.handler, Batched) else self._max_batch
        while not self._stopping.is_set():
            try:
                batches = await poll(consumer, max_records)
            except KafkaConnectionError as exc:
                log.warning("kafka connection lost, retrying", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            offsets: dict[TopicPartition, int] = {}
            if isinstance(sub.handler, Batched):
                # On shutdown, the batch in flight is finished and committed; no new one is taken.
                if batches and not self._stopping.is_set():
                    await self._handle_batch(batches, sub, sub.handler)
                    for tp, records in batches.items():
                        if records:
                            offsets[TopicPartition(tp.topic, tp.partition)] = records[-1].offset + 1
            else:
                for tp, records in batches.items():
                    done: int | None = None
                    for rec in records:
                        # On shutdown, finish the event in flight, commit it, and take no new one.
                        if self._stopping.is_set():
                            break
                        await self._handle(rec, sub)
                        done = rec.offset
                    if done is not None:
                        offsets[TopicPartition(tp.topic, tp.partition)] = done + 1
            for tp, next_offset in offsets.items():
                high = consumer.highwater(tp)
                if high is not None:
                    lags[tp.partition] = max(0, high - next_offset)
            if offsets:  # one commit for the whole round (one broker round trip, every partition)
                await consumer.commit(offsets)
            if self._metrics and batches:
                self._metrics.lag.labels(sub.group, sub.topic).set(sum(lags.values()))
            if on_progress is not None:
                on_progress()  # a whole round went through: a consumer that was down is back

    async def _handle_batch(
        self,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        sub: Subscription,
        handler: Batched,
    ) -> None:
        decode = decoder(sub.topic)
        events: list[Event] = []
        records: list[ConsumerRecord[bytes, bytes]] = []
        for recs in batches.values():
            for rec in recs:
                try:
                    events.append(decode(rec.value))
                except PoisonMessage as exc:
                    await self._dead_letter(rec, sub, str(exc), attempts=1)
                    continue
                records.append(rec)
        if not events:
            return
        if await run_batch(
            handler,
            events,
            topic=sub.topic,
            group=sub.group,
            retries=self._retries,
            backoff_s=self._backoff,
            clock=self._clock,
            metrics=self._metrics,
        ):
            return
        for rec, event in zip(records, events, strict=True):  # find the event that fails alone
            await self._run_one(handler.one, event, rec, sub)

    async def _handle(self, rec: ConsumerRecord[bytes, bytes], sub: Subscription) -> None:
        try:
            event = decoder(sub.topic)(rec.value)
        except PoisonMessage as exc:
            await self._dead_letter(rec, sub, str(exc), attempts=1)
            return
        await self._run_one(sub.handler, event, rec, sub)

    async def _run_one(
        self, handler: Handler, event: Event, rec: ConsumerRecord[bytes, bytes], sub: Subscription
    ) -> None:
        """``handler`` on one event with the bus's retries; the dead letter once they are spent."""
        failure = await run_with_retries(
            handler,
            event,
            topic=sub.topic,
            group=sub.group,
            retries=self._retries,
            backoff_s=self._backoff,
            clock=self._clock,
            metrics=self._metrics,
        )
        if failure is not None:
            await self._dead_letter(rec, sub, failure[0], attempts=failure[1])

    async def _dead_letter(
        self, rec: ConsumerRecord[bytes, bytes], sub: Subscription, reason: str, attempts: int
    ) -> None:
        log.error(
            "dead letter",
            topic=sub.topic,
            group=sub.group,
            reason=reason,
            offset=rec.offset,
            partition=rec.partition,
        )
        if self._metrics:
            self._metrics.dlq.labels(sub.group, sub.topic, reason_label(reason)).inc()
        if sub.topic == DeadLetter.topic:
            return
        dl = dead_letter(
            topic=sub.topic,
            raw=rec.value,
            key=rec.key,
            reason=reason,
            group=sub.group,
            attempts=attempts,
            partition=rec.partition,
            offset=rec.offset,
        )
        await self.publish(DeadLetter.topic, dl.stamped(producer=sub.group, sent_at=self._clock.now()))
