"""A ``Batched`` handler on the real broker: whole polls in one call, offsets committed after it,
and a batch that keeps failing handled one by one so that only the failing event is dead-lettered."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry
from pyros_common.bus.kafka import KafkaBus
from pyros_common.bus.metrics import BusMetrics
from pyros_common.bus.port import Batched
from pyros_common.contracts import DeadLetter, DeviceStatus, Event

pytestmark = pytest.mark.integration
N = 2_000


async def test_a_batched_handler_gets_whole_polls_and_only_a_failing_event_is_dead_lettered(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    registry = CollectorRegistry()
    bus = KafkaBus(
        bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        partitions=3,
        retries=2,
        retry_backoff_s=0.01,
        metrics=BusMetrics(registry),
    )
    batches: list[int] = []
    one_by_one: list[str] = []
    done: set[str] = set()

    async def many(events: Sequence[Event]) -> None:
        ids = [e.device_id for e in events if isinstance(e, DeviceStatus)]
        if "bad" in ids:
            raise ValueError("a bad device in the batch")
        batches.append(len(events))
        done.update(str(e.event_id) for e in events)

    async def one(event: Event) -> None:
        assert isinstance(event, DeviceStatus)
        if event.device_id == "bad":
            raise ValueError("bad device")
        one_by_one.append(str(event.event_id))
        done.add(str(event.event_id))

    bus.subscribe(DeviceStatus.topic, "monitoring", Batched(one, many))
    await bus.start()
    sent: list[str] = []
    try:
        await bus.wait_assigned()
        for i in range(N):  # one producer round trip each: the consumer gets them in polls
            ev = DeviceStatus(device_id=f"dev-{i % 7}", kind="camera", state="idle")
            sent.append(str(ev.event_id))
            await bus.publish(DeviceStatus.topic, ev)
        bad = DeviceStatus(device_id="bad", kind="camera", state="idle")
        await bus.publish(DeviceStatus.topic, bad)
        await bus.publish_raw(DeviceStatus.topic, b'{"device_id": "x", oops', b"x")
        after = DeviceStatus(device_id="dev-1", kind="camera", state="busy")
        await bus.publish(DeviceStatus.topic, after)
        sent.append(str(after.event_id))
        dlq = AIOKafkaConsumer(
            bus.physical(DeadLetter.topic),
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=f"{topic_prefix}check",
        )
        await dlq.start()
        letters: list[DeadLetter] = []
        try:
            async with asyncio.timeout(60):
                while len(letters) < 2:
                    msg = await dlq.getone()
                    assert msg.value is not None
                    letters.append(DeadLetter.model_validate_json(msg.value))
                while not done >= set(sent):
                    await asyncio.sleep(0.05)
        finally:
            await dlq.stop()
        # every offset is committed once the effects are done: nothing left for the group
        consumer = bus._consumers[0]
        async with asyncio.timeout(30):
            while True:
                parts = [TopicPartition(bus.physical(DeviceStatus.topic), p) for p in range(3)]
                committed = [await consumer.committed(tp) or 0 for tp in parts]
                ends = await consumer.end_offsets(parts)
                if committed == [ends[tp] for tp in parts]:
                    break
                await asyncio.sleep(0.1)
    finally:
        await bus.stop()
    assert max(batches) > 1, "the handler got one event per call"
    assert done >= set(sent)
    assert str(bad.event_id) not in done
    reasons = sorted(d.reason for d in letters)
    assert reasons[0].startswith("handler failed after 2 attempts: ValueError('bad device')")
    assert reasons[1].startswith("invalid JSON")
    poisoned = next(d for d in letters if d.reason.startswith("invalid JSON"))
    assert base64.b64decode(poisoned.original_bytes_b64) == b'{"device_id": "x", oops'
    assert len(one_by_one) >= 1  # the batch with the bad event went one by one
    consumed = registry.get_sample_value(
        "pyros_events_consumed_total", {"service": "monitoring", "topic": DeviceStatus.topic}
    )
    assert consumed is not None and consumed >= len(sent)
