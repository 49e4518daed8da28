"""A consumer that dies is never silent: its service turns FAULT with the reason, the consumer is
restarted from its committed offsets, nothing is lost, and the service is ENABLED again
(issue 10, row 10: an exception from ``commit`` ended the consumer task while the heartbeat kept
saying ENABLED). Real Kafka; the fault is injected into the real consumer's ``commit``."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from pyros_common.bus.kafka import KafkaBus
from pyros_common.bus.port import Handler
from pyros_common.clock import SystemClock
from pyros_common.contracts import DeviceStatus, Event, Heartbeat
from pyros_common.runtime.host import ServiceHost
from pyros_common.runtime.service import LifecycleState, Service, ServiceContext
from pyros_common.settings import Settings

pytestmark = pytest.mark.integration


class Probe(Service):
    name = "probe"
    needs_db = False

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self.seen: Counter[str] = Counter()

    def subscriptions(self) -> Iterable[tuple[str, Handler]]:
        return [(DeviceStatus.topic, self.on_status)]

    async def on_status(self, event: Event) -> None:
        assert isinstance(event, DeviceStatus)
        self.seen[event.device_id] += 1


async def _until(what: str, cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), timeout_s)
    except TimeoutError:
        pytest.fail(f"not within {timeout_s} s: {what}")


async def _scenario(bootstrap: str, prefix: str) -> None:
    clock = SystemClock()
    bus = KafkaBus(bootstrap=bootstrap, topic_prefix=prefix, clock=clock, producer="test")
    bus.restart_backoff_s = (0.2, 1.0)
    ctx = ServiceContext(bus=bus, clock=clock, settings=Settings())
    probe = Probe(ctx)
    host = ServiceHost(ctx, [probe])
    await host.start()
    try:
        await bus.wait_assigned()
        assert probe.state is LifecycleState.ENABLED
        consumer = bus._consumers[0]
        real_commit = consumer.commit
        failures = {"left": 1}

        async def failing_commit(*args: Any, **kwargs: Any) -> None:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise KafkaError("injected: the commit failed")
            await real_commit(*args, **kwargs)

        consumer.commit = failing_commit  # type: ignore[method-assign]
        await bus.publish(DeviceStatus.topic, DeviceStatus(device_id="first", kind="camera", state="idle"))
        await _until("the service turns FAULT", lambda: probe.state is LifecycleState.FAULT)
        assert "consumer down" in probe.reason and "injected: the commit failed" in probe.reason
        assert "pyros.device.status" in probe.reason
        await host.beat()  # the heartbeat says so too
        # restarted from the committed offset: the uncommitted event comes again, and the service recovers
        await _until("the service is ENABLED again", lambda: probe.state is LifecycleState.ENABLED)
        assert probe.seen["first"] == 2
        await bus.publish(DeviceStatus.topic, DeviceStatus(device_id="second", kind="camera", state="idle"))
        await _until("the next event is handled", lambda: probe.seen["second"] == 1)
        assert probe.state is LifecycleState.ENABLED and bus.faults == {}
    finally:
        await host.stop()


async def _heartbeats(bootstrap: str, prefix: str) -> list[str]:
    from aiokafka import AIOKafkaConsumer
    from pyros_common.bus.port import decode

    c = AIOKafkaConsumer(
        prefix + Heartbeat.topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await c.start()
    states: list[str] = []
    try:
        batches = await c.getmany(timeout_ms=3000)
        for records in batches.values():
            for rec in records:
                hb = decode(Heartbeat.topic, rec.value)
                assert isinstance(hb, Heartbeat)
                states.append(hb.state)
    finally:
        await c.stop()
    return states


def test_a_consumer_whose_commit_fails_marks_its_service_fault_then_recovers(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    asyncio.run(_scenario(kafka_bootstrap, topic_prefix))
    assert "FAULT" in asyncio.run(_heartbeats(kafka_bootstrap, topic_prefix))
