"""Alerts end to end on real Kafka, PostgreSQL and a real Comet broker (VTP) or the GCN Kafka intake."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from alerts_integration_helpers import (
    FERMI_EVENT,
    SVOM_EVENT,
    TWISTD,
    alerts_on_kafka,
    comet_broker,
    read_topic,
)

pytestmark = pytest.mark.integration


def _require_comet() -> None:
    if not TWISTD.exists():
        msg = f"Comet is not installed at {TWISTD}; run `scripts/comet.sh start` once to build its venv"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true)")
        pytest.skip(msg)


def _check_one_alert_one_request(alerts: list[dict[str, Any]], requests: list[dict[str, Any]]) -> None:
    # Packets are keyed by IVORN, so partitions may deliver Fermi before SVOM: the alert id
    # (named after its first packet) may be either; there must be exactly one.
    [alert_id] = {a["alert_id"] for a in alerts}
    assert alert_id in ("svom-sb26042105", "fermi-798437606")
    assert set(alerts[-1]["missions"]) == {"SVOM", "Fermi"}
    # One alert, one alert request: a better position revises the same request ("changed").
    assert {r["request_id"] for r in requests} == {alert_id + "-req"}, requests
    assert all(r["kind"] == "alert" for r in requests)
    assert requests[0]["action"] == "submitted"
    assert {r["action"] for r in requests[1:]} <= {"changed"}
    assert requests[-1]["document"]["alert_id"] == alert_id


def _done(expected: int) -> Any:
    return lambda out: len(out) >= expected


@pytest.mark.comet
async def test_vtp_from_comet_gives_one_alert_and_one_request(
    kafka_bootstrap: str, topic_prefix: str, pg_url: str, voevents_dir: Path
) -> None:
    _require_comet()
    with comet_broker() as comet:
        async with alerts_on_kafka(
            bootstrap=kafka_bootstrap, prefix=topic_prefix, db_url=pg_url, vtp_port=comet.broadcast_port
        ) as running:
            vtp = running.service.vtp
            assert vtp is not None
            await asyncio.wait_for(vtp.connected.wait(), 30)
            for name in (*SVOM_EVENT, *FERMI_EVENT):
                await asyncio.to_thread(comet.send, voevents_dir / name)
            raw = await read_topic(kafka_bootstrap, topic_prefix + "pyros.voevents.raw", until=_done(7))
            alerts = await read_topic(kafka_bootstrap, topic_prefix + "pyros.alerts", until=_done(7))
            requests = await read_topic(kafka_bootstrap, topic_prefix + "pyros.requests", until=_done(1))
            assert vtp.events_received == 7
    assert sorted(r["intake"] for r in raw) == ["vtp"] * 7
    _check_one_alert_one_request(alerts, requests)


async def test_gcn_kafka_intake_gives_one_alert_and_one_request(
    kafka_bootstrap: str, topic_prefix: str, pg_url: str, voevents_dir: Path
) -> None:
    from aiokafka import AIOKafkaProducer

    """The production path: gcn_kafka.Consumer (confluent-kafka) on our broker, GCN's topic names,
    VOEvent notices and one JSON notice (not a VOEvent: refused with its reason, to the DLQ)."""
    # GCN topic names as on gcn.nasa.gov, under this test's prefix, created by producing to them.
    topics = {
        "svom": topic_prefix + "gcn.notices.svom.voevent.eclairs",
        "fermi": topic_prefix + "gcn.classic.voevent.FERMI_GBM_FLT_POS",
        "json": topic_prefix + "gcn.notices.swift.bat.guano",
    }
    notice = b'{"$schema": "https://gcn.nasa.gov/schema/main/gcn/notices/swift/bat/guano.schema.json"}'
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with alerts_on_kafka(
            bootstrap=kafka_bootstrap,
            prefix=topic_prefix,
            db_url=pg_url,
            gcn=True,
            gcn_topics=["gcn.classic.voevent.*", "gcn.notices.svom.voevent.*", "gcn.notices.swift.bat.guano"],
        ) as running:
            for name in (*SVOM_EVENT, *FERMI_EVENT):
                topic = topics["svom" if name.startswith("svom") else "fermi"]
                await producer.send_and_wait(topic, (voevents_dir / name).read_bytes())
            await producer.send_and_wait(topics["json"], notice)
            gcn = running.service.gcn
            assert gcn is not None
            raw = await read_topic(kafka_bootstrap, topic_prefix + "pyros.voevents.raw", until=_done(8))
            alerts = await read_topic(kafka_bootstrap, topic_prefix + "pyros.alerts", until=_done(7))
            requests = await read_topic(kafka_bootstrap, topic_prefix + "pyros.requests", until=_done(1))
            dlq = await read_topic(kafka_bootstrap, topic_prefix + "pyros.dlq", until=_done(1))
    finally:
        await producer.stop()
    assert sorted(r["intake"] for r in raw) == ["gcn-kafka"] * 8
    _check_one_alert_one_request(alerts, requests)
    [refused] = dlq
    assert refused["original_topic"] == "pyros.voevents.raw" and refused["reason"], refused
