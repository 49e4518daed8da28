"""Alert intake latency: a packet arriving on VTP (from a real Comet broker) to its alert
request on ``pyros.requests``, through real Kafka and PostgreSQL, with the bare Kafka
produce→consume hop measured in the same run for comparison.

    .venv/bin/python benchmarks/alert_intake.py [-n 200] [--out benchmarks/results/alert_intake.json]

Needs Kafka (scripts/kafka.sh start), PostgreSQL (scripts/postgres.sh start) and Comet's
venv (scripts/comet.sh start builds it). Each packet is a distinct synthetic SVOM ECLAIRs
burst, so each one creates an alert and one request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "alerts"))

from alerts_integration_helpers import alerts_on_kafka, comet_broker  # noqa: E402
from pyros_common.bus.kafka import poll_some  # noqa: E402
from pyros_common.clock import SystemClock  # noqa: E402

KAFKA = os.environ.get("PYROS_TEST_KAFKA", "127.0.0.1:9092")
PG_ADMIN = os.environ.get("PYROS_TEST_PG", "postgresql://pyros:pyros@127.0.0.1:5432/pyros")
TEMPLATE = ROOT / "tests" / "data" / "voevents" / "svom" / "sb26022802_eclairs-wakeup.xml"


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(_pct(ms, 0.5), 3),
        "p99_ms": round(_pct(ms, 0.99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(max(ms), 3),
    }


async def bare_hop(n: int, clock: SystemClock, gap_s: float = 0.0) -> list[float]:
    """Produce n small messages and time each to its consumption (same broker, same process),
    consumed as every PyROS consumer takes records (``pyros_common.bus.kafka.poll``).

    ``gap_s``: idle time before each message (as between the alerts of
    benchmarks/alert_to_slew.py); back to back (0) the broker and both clients stay hot."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"bench{uuid.uuid4().hex[:8]}.hop"
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", group_id=None)
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")
    await consumer.start()
    out: list[float] = []
    try:
        await poll_some(consumer)
        for _ in range(n):
            if gap_s:
                await asyncio.sleep(gap_s)
            t0 = clock.monotonic()
            await producer.send_and_wait(topic, b"x")
            await poll_some(consumer)
            out.append((clock.monotonic() - t0) * 1000)
    finally:
        await consumer.stop()
        await producer.stop()
    return out


async def vtp_to_request(n: int, clock: SystemClock, db_url: str, workdir: Path) -> list[float]:
    from aiokafka import AIOKafkaConsumer

    template = TEMPLATE.read_text(encoding="utf-8")
    packets = []
    for i in range(n):
        burst = f"sb9{i:07d}"
        p = workdir / f"{burst}.xml"
        p.write_text(template.replace("sb26022802", burst), encoding="utf-8")
        packets.append(p)
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    with comet_broker() as comet:
        async with alerts_on_kafka(
            bootstrap=KAFKA, prefix=prefix, db_url=db_url, vtp_port=comet.broadcast_port
        ) as running:
            assert running.service.vtp is not None
            await asyncio.wait_for(running.service.vtp.connected.wait(), 30)
            consumer = AIOKafkaConsumer(
                prefix + "pyros.requests",
                bootstrap_servers=KAFKA,
                auto_offset_reset="earliest",
                group_id=None,
            )
            await consumer.start()
            latencies: list[float] = []
            received: dict[str, datetime] = {}

            async def collect() -> None:
                while len(latencies) < n:
                    recs = await poll_some(consumer)
                    seen = clock.now()
                    for rec in recs:
                        doc = json.loads(rec.value)
                        if doc["action"] != "submitted":
                            continue
                        # received_at of the packet = when the VTP intake read it off the socket.
                        ivorn = f"ivo://org.svom/fsc#{doc['request_id'].split('-')[1]}_eclairs-wakeup"
                        while ivorn not in received:
                            await asyncio.sleep(0.01)
                        latencies.append((seen - received[ivorn]).total_seconds() * 1000)

            original = running.service.receive

            async def receive(raw: bytes, intake: str) -> Any:
                event = await original(raw, intake)
                if event is not None:
                    received[event.ivorn] = event.received_at
                return event

            running.service.vtp.submit = receive
            collector = asyncio.create_task(collect())
            sem = asyncio.Semaphore(4)

            async def send(p: Path) -> None:
                async with sem:
                    await asyncio.to_thread(comet.send, p)

            await asyncio.gather(*(send(p) for p in packets))
            await asyncio.wait_for(collector, 120)
            await consumer.stop()
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "alert_intake.json")
    args = ap.parse_args()
    import psycopg

    clock = SystemClock()
    name = f"pyros_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    db_url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            hop = asyncio.run(bare_hop(args.n, clock))
            alert = asyncio.run(vtp_to_request(args.n, clock, db_url, Path(tmp)))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    result = {
        "benchmark": "alert_intake",
        "when": clock.now().isoformat(),
        "what": "VTP packet read by the alerts intake -> RequestChanged(submitted) consumed from pyros.requests",
        "path": "Comet -> VTP intake -> Kafka pyros.voevents.raw -> alerts handler (PostgreSQL) -> Kafka "
        "pyros.requests -> consumer",
        "vtp_to_request": _summary(alert),
        "bare_kafka_hop": _summary(hop),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
