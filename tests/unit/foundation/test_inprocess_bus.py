import asyncio
import base64
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pyros_common.bus import BusMetrics, InProcessBus
from pyros_common.contracts import DeadLetter, DeviceStatus, Event, ObservationChanged


def status(device: str, n: int) -> DeviceStatus:
    return DeviceStatus(device_id=device, kind="camera", state="idle", values={"n": n})


async def test_order_per_key_and_every_event_once() -> None:
    bus = InProcessBus()
    seen: list[tuple[str, int]] = []

    async def handler(ev: Event) -> None:
        assert isinstance(ev, DeviceStatus)
        seen.append((ev.device_id, int(ev.values["n"])))

    bus.subscribe(DeviceStatus.topic, "monitoring", handler)
    await bus.start()
    for n in range(50):
        await bus.publish(DeviceStatus.topic, status(f"d{n % 3}", n))
    await bus.drain()
    await bus.stop()
    assert len(seen) == 50
    for d in ("d0", "d1", "d2"):
        ns = [n for dev, n in seen if dev == d]
        assert ns == sorted(ns)


async def test_two_groups_each_get_every_event() -> None:
    bus = InProcessBus()
    got: dict[str, int] = {"a": 0, "b": 0}

    def counter(g: str):  # type: ignore[no-untyped-def]
        async def h(ev: Event) -> None:
            got[g] += 1

        return h

    bus.subscribe(DeviceStatus.topic, "a", counter("a"))
    bus.subscribe(DeviceStatus.topic, "b", counter("b"))
    await bus.start()
    for n in range(5):
        await bus.publish(DeviceStatus.topic, status("x", n))
    await bus.stop()
    assert got == {"a": 5, "b": 5}


async def test_retry_then_success_is_not_a_dead_letter() -> None:
    bus = InProcessBus(retries=3, retry_backoff_s=0)
    attempts = 0

    async def flaky(ev: Event) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("device busy")

    bus.subscribe(DeviceStatus.topic, "g", flaky)
    await bus.start()
    await bus.publish(DeviceStatus.topic, status("x", 1))
    await bus.stop()
    assert attempts == 3
    assert bus.log[DeadLetter.topic] == []


async def test_poison_messages_go_to_the_dlq_with_a_reason_and_the_consumer_goes_on() -> None:
    registry = CollectorRegistry()
    bus = InProcessBus(metrics=BusMetrics(registry), retries=2, retry_backoff_s=0)
    handled: list[str] = []
    dead: list[DeadLetter] = []

    async def handler(ev: Event) -> None:
        assert isinstance(ev, ObservationChanged)
        if ev.sequence_id == "boom":
            raise ValueError("cannot handle boom")
        handled.append(ev.sequence_id)

    async def on_dead(ev: Event) -> None:
        assert isinstance(ev, DeadLetter)
        dead.append(ev)

    bus.subscribe(ObservationChanged.topic, "observer", handler)
    bus.subscribe(DeadLetter.topic, "monitoring", on_dead)
    await bus.start()
    await bus.publish_raw(ObservationChanged.topic, b"{not json", b"k")
    bad = {"sequence_id": "s", "request_id": "r", "action": "exploded"}
    await bus.publish_raw(ObservationChanged.topic, json.dumps(bad).encode(), b"k")
    await bus.publish(
        ObservationChanged.topic, ObservationChanged(sequence_id="boom", request_id="r", action="started")
    )
    await bus.publish(
        ObservationChanged.topic, ObservationChanged(sequence_id="ok", request_id="r", action="started")
    )
    await bus.stop()
    assert handled == ["ok"]
    reasons = [d.reason for d in dead]
    assert reasons[0].startswith("invalid JSON")
    assert "validation at action" in reasons[1]
    assert "handler failed after 2 attempts" in reasons[2] and "cannot handle boom" in reasons[2]
    assert base64.b64decode(dead[0].original_bytes_b64) == b"{not json"
    assert dead[0].original_topic == ObservationChanged.topic and dead[0].consumer_group == "observer"
    assert (
        registry.get_sample_value(
            "pyros_dlq_total",
            {"service": "observer", "topic": ObservationChanged.topic, "reason": "invalid_json"},
        )
        == 1
    )


@pytest.mark.parametrize("raw", [None, b"", b"[]", b'{"device_id": 3}'])
async def test_decode_refuses_garbage(raw: bytes | None) -> None:
    from pyros_common.bus import PoisonMessage, decode

    with pytest.raises(PoisonMessage):
        decode(DeviceStatus.topic, raw)


async def test_the_journal_gives_a_restarted_bus_what_was_published_but_not_handled(tmp_path: Path) -> None:
    """``pyros up`` without a broker: a published event survives the process (issue 10, row 1)."""
    from pyros_common.bus.journal import BusJournal

    path = tmp_path / "bus-journal.sqlite3"
    seen: list[str] = []

    async def handler(event: Event) -> None:
        assert isinstance(event, DeviceStatus)
        seen.append(event.device_id)

    first = InProcessBus(journal=BusJournal(path))
    first.subscribe(DeviceStatus.topic, "g", handler)
    await first.start()
    await first.publish(DeviceStatus.topic, DeviceStatus(device_id="a", kind="camera", state="idle"))
    await first.drain()
    assert seen == ["a"]
    # the process dies with two events published (acknowledged) and not yet handled
    first._tasks[0].cancel()
    await asyncio.sleep(0)
    for name in ("b", "c"):
        await first.publish(DeviceStatus.topic, DeviceStatus(device_id=name, kind="camera", state="idle"))

    second = InProcessBus(journal=BusJournal(path))
    second.subscribe(DeviceStatus.topic, "g", handler)
    other: list[str] = []

    async def late(event: Event) -> None:
        assert isinstance(event, DeviceStatus)
        other.append(event.device_id)

    second.subscribe(DeviceStatus.topic, "h", late)  # a group that never committed: it gets all
    await second.start()
    await second.drain()
    assert seen == ["a", "b", "c"]  # only what "g" had not committed, once
    assert other == ["a", "b", "c"]
    await second.stop()
