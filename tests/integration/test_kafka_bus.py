"""The bus on the real broker: at-least-once across a SIGKILL, idempotent effects, DLQ for poison."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from pyros_common.bus.kafka import KafkaBus
from pyros_common.contracts import DeadLetter, DeviceStatus, Event, ObservationChanged
from pyros_common.db import Database
from sqlalchemy import text

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent
N = 10_000


def _count(db: Database, sql: str) -> int:
    with db.session() as s:
        return int(s.execute(text(sql)).scalar_one())


def _start_consumer(bootstrap: str, prefix: str, url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "kafka_consumer_proc.py"), bootstrap, prefix, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == b"READY", proc.stderr.read().decode() if proc.stderr else line
    return proc


def test_sigkill_mid_stream_loses_nothing_and_effects_stay_exactly_once(
    kafka_bootstrap: str, topic_prefix: str, pg_url: str, pg_db: Database
) -> None:
    db = pg_db
    with db.session() as s:
        s.execute(text("CREATE TABLE deliveries (id bigserial primary key, event_id varchar(36) not null)"))

    async def produce() -> list[str]:
        bus = KafkaBus(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, partitions=3)
        await bus.start()
        ids = []
        try:
            for i in range(N):
                ev = DeviceStatus(device_id=f"dev-{i % 37}", kind="camera", state="idle", values={"i": i})
                ids.append(str(ev.event_id))
                await bus.publish(DeviceStatus.topic, ev)
        finally:
            await bus.stop()
        return ids

    ids = asyncio.run(produce())
    assert len(set(ids)) == N

    consumer = _start_consumer(kafka_bootstrap, topic_prefix, pg_url)
    deadline = time.monotonic() + 300
    while _count(db, "SELECT count(*) FROM deliveries") < N // 3:
        assert time.monotonic() < deadline, "consumer made no progress"
        if consumer.poll() is not None:
            pytest.fail("consumer died: " + consumer.communicate()[1].decode()[-2000:])
        time.sleep(0.2)
    consumer.send_signal(signal.SIGKILL)
    consumer.communicate(timeout=10)
    handled_before = _count(db, "SELECT count(*) FROM deliveries")
    assert 0 < handled_before < N, "the kill must land mid-stream"

    consumer = _start_consumer(kafka_bootstrap, topic_prefix, pg_url)
    try:
        while _count(db, "SELECT count(DISTINCT event_id) FROM deliveries") < N:
            assert time.monotonic() < deadline, "not every event was handled after the restart"
            time.sleep(0.5)
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.communicate(timeout=60)

    delivered = _count(db, "SELECT count(*) FROM deliveries")
    assert _count(db, "SELECT count(DISTINCT event_id) FROM deliveries") == N  # at least once
    assert delivered >= N
    assert (
        _count(db, "SELECT count(*) FROM processed_events WHERE consumer_group='killtest'") == N
    )  # exactly once
    with db.session() as s:
        stored = {r[0] for r in s.execute(text("SELECT event_id FROM processed_events"))}
    assert stored == set(ids)
    print(f"\n{N} events, {handled_before} handled before SIGKILL, {delivered - N} redelivered after restart")


async def test_poison_messages_land_on_the_dlq_and_the_consumer_keeps_going(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    bus = KafkaBus(
        bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, partitions=3, retries=2, retry_backoff_s=0.01
    )
    handled: list[str] = []

    async def handler(ev: Event) -> None:
        assert isinstance(ev, ObservationChanged)
        handled.append(ev.sequence_id)

    bus.subscribe(ObservationChanged.topic, "observer", handler)
    await bus.start()
    try:
        await bus.wait_assigned()
        await bus.publish_raw(ObservationChanged.topic, b'{"sequence_id": "s1", oops', b"s1")
        await bus.publish_raw(
            ObservationChanged.topic,
            json.dumps({"sequence_id": "s1", "request_id": "r", "action": 7}).encode(),
            b"s1",
        )
        await bus.publish(
            ObservationChanged.topic, ObservationChanged(sequence_id="s1", request_id="r", action="started")
        )
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
        finally:
            await dlq.stop()
        async with asyncio.timeout(30):
            while handled != ["s1"]:
                await asyncio.sleep(0.05)
    finally:
        await bus.stop()
    letters.sort(key=lambda d: d.original_offset or 0)
    assert letters[0].reason.startswith("invalid JSON")
    assert base64.b64decode(letters[0].original_bytes_b64) == b'{"sequence_id": "s1", oops'
    assert "validation at action" in letters[1].reason
    assert {d.consumer_group for d in letters} == {"observer"}
    assert handled == ["s1"]


def test_migrations_run_on_postgresql_and_times_stay_utc(pg_db: Database) -> None:
    from datetime import UTC, datetime

    from pyros_common.db.models import Schedule
    from sqlalchemy import select

    pg_db.check()
    when = datetime(2026, 12, 15, 4, 30, tzinfo=UTC)
    with pg_db.session() as s:
        s.add(Schedule(telescope_id="gft", night=when.date(), version=1, created_at=when, document={"a": 1}))
    with pg_db.session() as s:
        got = s.scalars(select(Schedule)).one()
    assert got.created_at == when and got.document == {"a": 1}
    with pg_db.session() as s:
        assert pg_db.mark_processed(s, "g", "e", when) is True
        assert pg_db.mark_processed(s, "g", "e", when) is False
