"""One produce→consume hop on the real broker: bare aiokafka against the PyROS bus, same run.

    .venv/bin/python benchmarks/bus_hop.py [--bootstrap 127.0.0.1:9092] [--messages 1000] [--rounds 4]

Messages are paced (one every --gap-ms) so that each hop is measured alone, as an alert would
travel. Rounds alternate bare and bus so that drift in machine load hits both. Writes
benchmarks/results/bus_hop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
import uuid
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pyros_common.bus.kafka import KafkaBus, poll_some
from pyros_common.contracts import DeviceStatus, Event

OUT = Path(__file__).parent / "results" / "bus_hop.json"


async def _wait_assigned(consumer: AIOKafkaConsumer) -> None:
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    await consumer.seek_to_end()


async def bare_round(bootstrap: str, n: int, gap_s: float) -> list[float]:
    topic = f"bench.bare.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=True,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    await _wait_assigned(consumer)
    latencies: list[float] = []
    payload = DeviceStatus(device_id="telescope", kind="telescope", state="idle").model_dump_json().encode()
    try:
        for i in range(n):
            t0 = time.perf_counter()
            await producer.send_and_wait(topic, payload, key=f"k{i % 7}".encode())
            await poll_some(consumer)
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(gap_s)
    finally:
        await consumer.stop()
        await producer.stop()
    return latencies


async def bus_round(bootstrap: str, n: int, gap_s: float) -> list[float]:
    bus = KafkaBus(bootstrap=bootstrap, topic_prefix=f"bench.{uuid.uuid4().hex[:8]}.", partitions=3)
    got: asyncio.Queue[float] = asyncio.Queue()

    async def handler(ev: Event) -> None:
        got.put_nowait(time.perf_counter())

    bus.subscribe(DeviceStatus.topic, "bench", handler)
    await bus.start()
    await bus.wait_assigned()
    latencies: list[float] = []
    try:
        for i in range(n):
            ev = DeviceStatus(device_id=f"k{i % 7}", kind="telescope", state="idle")
            t0 = time.perf_counter()
            await bus.publish(DeviceStatus.topic, ev)
            t1 = await got.get()
            latencies.append(t1 - t0)
            await asyncio.sleep(gap_s)
    finally:
        await bus.stop()
    return latencies


def summary(lat: list[float]) -> dict[str, float]:
    a = np.asarray(lat) * 1000
    return {
        "n": len(a),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "max_ms": float(a.max()),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--messages", type=int, default=1000, help="per round and transport")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--gap-ms", type=float, default=5.0)
    ap.add_argument("--warmup", type=int, default=100)
    args = ap.parse_args()
    gap = args.gap_ms / 1000
    await bare_round(args.bootstrap, args.warmup, gap)
    await bus_round(args.bootstrap, args.warmup, gap)
    bare: list[float] = []
    ours: list[float] = []
    for r in range(args.rounds):
        first, second = (bare_round, bus_round) if r % 2 == 0 else (bus_round, bare_round)
        a = await first(args.bootstrap, args.messages, gap)
        b = await second(args.bootstrap, args.messages, gap)
        (bare if first is bare_round else ours).extend(a)
        (ours if second is bus_round else bare).extend(b)
        print(
            f"round {r + 1}/{args.rounds}: bare p50 {statistics.median(bare) * 1000:.2f} ms, "
            f"bus p50 {statistics.median(ours) * 1000:.2f} ms",
            flush=True,
        )
    s_bare, s_bus = summary(bare), summary(ours)
    result = {
        "benchmark": "bus_hop",
        "what": "one produce→consume hop on the real Kafka broker (acks=all, idempotent producer), paced",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "bootstrap": args.bootstrap,
        "bare_aiokafka": s_bare,
        "pyros_bus": s_bus,
        "overhead_p50_pct": 100 * (s_bus["p50_ms"] / s_bare["p50_ms"] - 1),
        "overhead_p99_pct": 100 * (s_bus["p99_ms"] / s_bare["p99_ms"] - 1),
        "target": "bus p99 at most 20% above bare p99",
    }
    result["meets_target"] = result["overhead_p99_pct"] <= 20.0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.rename(OUT)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
