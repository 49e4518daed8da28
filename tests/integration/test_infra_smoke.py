"""Smoke tests for the local test infrastructure (scripts/kafka.sh, scripts/postgres.sh).

If a service is unreachable the test is skipped, except under CI=true where it fails:
CI is expected to have started the services.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.integration

KAFKA_BOOTSTRAP = os.environ.get("PYROS_TEST_KAFKA", "127.0.0.1:9092")
POSTGRES_DSN = os.environ.get("PYROS_TEST_POSTGRES_DSN", "postgresql://pyros:pyros@127.0.0.1:5432/pyros")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true, so the service must be running)", pytrace=False)
    pytest.skip(reason)


def _require_tcp(host: str, port: int, what: str, start_cmd: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        _unavailable(f"{what} not reachable on {host}:{port} ({exc}); run {start_cmd}")


async def test_kafka_produce_consume_roundtrip() -> None:
    host, _, port = KAFKA_BOOTSTRAP.rpartition(":")
    _require_tcp(host, int(port), "Kafka", "scripts/kafka.sh start")

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"pyros-smoke-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    sent = [f"msg-{i}".encode() for i in range(10)]
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, acks="all", request_timeout_ms=10_000)
    await producer.start()
    try:
        for i, value in enumerate(sent):
            await producer.send_and_wait(topic, value, key=str(i).encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < len(sent):
            batches = await consumer.getmany(timeout_ms=10_000)
            if not batches:
                break
            for records in batches.values():
                received.extend(r.value for r in records if r.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert received == sent

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def test_postgres_select_one() -> None:
    url = urlsplit(POSTGRES_DSN)
    _require_tcp(url.hostname or "127.0.0.1", url.port or 5432, "PostgreSQL", "scripts/postgres.sh start")

    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(POSTGRES_DSN, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _unavailable(f"cannot connect to {POSTGRES_DSN}: {exc}")
        raise
    async with conn:
        cur = await conn.execute("SELECT 1")
        assert await cur.fetchone() == (1,)
