"""Device-status events per second through real Kafka into monitoring, and its memory over a soak.

    .venv/bin/python benchmarks/status_throughput.py [--messages 200000] [--devices 50]
        [--change-fraction 0.001] [--soak-s 600] [--soak-rate 20000] [--out ...]

1. ``--messages`` DeviceStatus events of ``--devices`` devices (a ``--change-fraction`` of them a
   change of state, written at once with a history row; the rest periodic, batched) are produced
   to a fresh topic before any consumer starts.
2. Four consumers read that same backlog in the same run: bare aiokafka (no decoding: the
   broker and client ceiling), the PyROS Kafka bus with a handler that does nothing (decode,
   retries, metrics, commits), one event per call and a whole poll per call (``Batched``), and
   monitoring itself (bus + device health on PostgreSQL, a poll per call). Each: events per
   second of wall time, and this process's CPU time per event (the machine is shared).
3. The soak: another process produces at ``--soak-rate`` for ``--soak-s`` while monitoring
   consumes; monitoring's resident memory (this process: it hosts only monitoring then) and its
   lag are sampled every 5 s. Flat memory: the slope of a linear fit over the second half. The
   CPU seconds of monitoring, of the producer and of the broker over the soak are recorded.

Writes benchmarks/results/status_throughput.json (commit, arguments, machine, time).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import os
import queue
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import commit, machine  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "status_throughput.json"
PG_ADMIN = os.environ.get("PYROS_TEST_PG", "postgresql://pyros:pyros@127.0.0.1:5432/pyros")
PARTITIONS = 3


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def payloads(devices: int, change_fraction: float, n_variants: int = 4000) -> list[tuple[bytes, bytes]]:
    """Encoded DeviceStatus events (value, key): periodic ones, and a fraction of state changes."""
    from pyros_common.bus.port import encode
    from pyros_common.contracts import DeviceStatus

    rng = np.random.default_rng(0)
    sent = dt.datetime(2026, 12, 16, 4, 0, tzinfo=dt.UTC)
    kinds = ["telescope", "camera", "dome", "filterwheel", "focuser", "weather", "plc"]
    out = []
    state = {d: "idle" for d in range(devices)}
    for i in range(n_variants):
        d = int(rng.integers(devices))
        if rng.random() < change_fraction:
            state[d] = "busy" if state[d] == "idle" else "idle"
        kind = kinds[d % len(kinds)]
        values: dict[str, float | str | bool] = {"command": "status"}
        if kind in ("weather", "plc"):
            values = {
                "rain": False,
                "wind_ms": 4.0,
                "humidity_pct": 40.0,
                "sky_minus_ambient_c": -30.0,
                "ambient_c": 8.0,
            }
        ev = DeviceStatus(
            device_id=f"dev-{d:03d}",
            kind=kind,
            state=state[d],
            temperature_c=-20.0,
            values=values,  # type: ignore[arg-type]
        ).stamped(producer="bench", sent_at=sent + dt.timedelta(seconds=i))
        out.append((encode(ev), ev.key().encode()))
    return out


async def produce(
    bootstrap: str, topic: str, data: list[tuple[bytes, bytes]], n: int, rate: float | None = None
) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1)
    await producer.start()
    t0 = time.perf_counter()
    try:
        pending = []
        chunk = max(1, int(rate / 20)) if rate else 5000
        for start in range(0, n, chunk):
            for i in range(start, min(n, start + chunk)):
                value, key = data[i % len(data)]
                pending.append(await producer.send(topic, value, key=key))
            await asyncio.gather(*pending)
            pending.clear()
            if rate:
                ahead = (start + chunk) / rate - (time.perf_counter() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


def _soak_producer(
    bootstrap: str, topic: str, devices: int, change_fraction: float, n: int, rate: float, out: Any
) -> None:
    sys.path[:0] = [str(ROOT / "libs")]
    data = payloads(devices, change_fraction)
    cpu0 = time.process_time()
    wall = asyncio.run(produce(bootstrap, topic, data, n, rate))
    out.put({"produce_s": round(wall, 1), "cpu_s": round(time.process_time() - cpu0, 1)})


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process [s] (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The local Kafka broker's process, to account for its CPU during the soak."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if b"java" in cmd and b"kafka" in cmd.lower():
            return int(d.name)
    return None


async def bare(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    c = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await c.start()
    got = 0
    t0 = None
    try:
        while got < n:
            batches = await c.getmany(timeout_ms=500, max_records=500)
            if t0 is None and batches:
                t0, cpu0 = time.perf_counter(), time.process_time()
            for tp, records in batches.items():
                got += len(records)
                if records:
                    await c.commit({tp: records[-1].offset + 1})
        end, cpu = time.perf_counter(), time.process_time() - cpu0
    finally:
        await c.stop()
    assert t0 is not None
    return n / (end - t0), cpu / n * 1e6


async def bus_noop(bootstrap: str, prefix: str, n: int, *, batched: bool = False) -> tuple[float, float]:
    """The bus with a handler that only counts: per event, or ``batched`` (a whole poll per call)."""
    from pyros_common.bus.kafka import KafkaBus
    from pyros_common.bus.port import Batched
    from pyros_common.contracts import DeviceStatus, Event

    bus = KafkaBus(bootstrap=bootstrap, topic_prefix=prefix, partitions=PARTITIONS)
    count = 0
    first: list[float] = []
    done = asyncio.Event()

    async def handler(ev: Event) -> None:
        nonlocal count
        if not first:
            first.extend((time.perf_counter(), time.process_time()))
        count += 1
        if count >= n:
            done.set()

    async def many(events: Sequence[Event]) -> None:
        nonlocal count
        if not first:
            first.extend((time.perf_counter(), time.process_time()))
        count += len(events)
        if count >= n:
            done.set()

    bus.subscribe(
        DeviceStatus.topic, f"noop-{uuid.uuid4().hex[:6]}", Batched(handler, many) if batched else handler
    )
    await bus.start()
    try:
        await asyncio.wait_for(done.wait(), 3600)
    finally:
        end, cpu = time.perf_counter(), time.process_time()
        await bus.stop()
    return n / (end - first[0]), (cpu - first[1]) / n * 1e6


def make_db() -> tuple[str, Any]:
    import psycopg

    conn = psycopg.connect(PG_ADMIN, autocommit=True)
    name = f"pyros_bench_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}", (conn, name)


class MonitoringRun:
    """monitoring on the Kafka bus and PostgreSQL, as ``pyros run monitoring`` builds it."""

    def __init__(self, bootstrap: str, prefix: str, db_url: str) -> None:
        from prometheus_client import CollectorRegistry
        from pyros_common.bus.kafka import KafkaBus
        from pyros_common.bus.metrics import BusMetrics
        from pyros_common.clock import SystemClock
        from pyros_common.db import Database
        from pyros_common.runtime.host import ServiceHost
        from pyros_common.runtime.service import ServiceContext
        from pyros_common.settings import Settings
        from pyros_monitoring.app import MonitoringService

        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, database_url=db_url)
        self.registry = CollectorRegistry()
        self.metrics = BusMetrics(self.registry)
        bus = KafkaBus(
            bootstrap=bootstrap,
            topic_prefix=prefix,
            partitions=PARTITIONS,
            metrics=self.metrics,
            producer="monitoring",
        )
        self.db = Database(db_url)
        self.db.upgrade()
        ctx = ServiceContext(
            bus=bus,
            clock=SystemClock(),
            settings=settings,
            db=self.db,
            registry=self.registry,
            bus_metrics=self.metrics,
        )
        self.svc = MonitoringService(ctx)
        self.host = ServiceHost(ctx, [self.svc])

    def handled(self) -> float:
        # the counter itself: collecting the registry every 10 ms cost monitoring's loop too
        return float(self.svc.metrics.status_events._value.get())

    def lag(self) -> float:
        v = self.registry.get_sample_value(
            "pyros_consumer_lag_messages", {"service": "monitoring", "topic": "pyros.device.status"}
        )
        return v or 0.0


async def monitoring_throughput(run: MonitoringRun, n: int) -> tuple[float, float]:
    first: list[float] = []

    async def watch_first() -> None:  # from before the start: the first event is never missed
        while run.handled() == 0:
            await asyncio.sleep(0.001)
        first.extend((time.perf_counter(), time.process_time()))

    watcher = asyncio.create_task(watch_first())
    # The host's start returns once every consumer has joined, the first one already handling
    # events meanwhile: the end is when the count is reached, not after the start.
    starting = asyncio.create_task(run.host.start())
    while run.handled() < n:
        if starting.done() and starting.exception() is not None:
            raise RuntimeError("monitoring did not start") from starting.exception()
        await asyncio.sleep(0.01)
    end, cpu = time.perf_counter(), time.process_time()
    await starting
    await watcher
    return n / (end - first[0]), (cpu - first[1]) / n * 1e6


async def soak(run: MonitoringRun, args: argparse.Namespace, topic: str) -> dict[str, Any]:
    n = int(args.soak_s * args.soak_rate)
    start_count = run.handled()
    ctx = mp.get_context("spawn")
    report = ctx.Queue()
    proc = ctx.Process(
        target=_soak_producer,
        args=(args.bootstrap, topic, args.devices, args.change_fraction, n, args.soak_rate, report),
    )
    broker = broker_pid()
    broker_cpu0 = cpu_s(broker) if broker else None
    load0 = os.getloadavg()
    proc.start()
    samples = []
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    edges: list[float] = []  # when the first soak event was handled, and when the n-th was

    async def watch_edges() -> None:
        while run.handled() == start_count:
            await asyncio.sleep(0.02)
        edges.append(time.perf_counter())
        while run.handled() - start_count < n:
            await asyncio.sleep(0.02)
        edges.append(time.perf_counter())

    watcher = asyncio.create_task(watch_edges())
    try:
        while True:
            await asyncio.sleep(5.0)
            t = time.perf_counter() - t0
            samples.append(
                {
                    "t_s": round(t, 1),
                    "handled": run.handled() - start_count,
                    "rss_mb": round(rss_mb(), 1),
                    "lag": run.lag(),
                }
            )
            if run.handled() - start_count >= n or t > args.soak_s * 3 + 60:
                break
    finally:
        proc.join(timeout=60)
        watcher.cancel()
    elapsed = time.perf_counter() - t0
    monitoring_cpu = time.process_time() - cpu0
    broker_cpu = cpu_s(broker) - broker_cpu0 if broker and broker_cpu0 is not None else None
    try:
        producer = report.get(timeout=10)
    except queue.Empty:
        producer = {}
    cpu = {
        "note": "CPU seconds over the soak of each process on this 2-CPU machine; "
        "other agents' work shares it too (load average before and after)",
        "monitoring_cpu_s": round(monitoring_cpu, 1),
        "monitoring_us_per_event": round(monitoring_cpu / max(1.0, samples[-1]["handled"]) * 1e6, 1)
        if samples
        else None,
        "producer_cpu_s": producer.get("cpu_s"),
        "producer_wall_s": producer.get("produce_s"),
        "broker_cpu_s": None if broker_cpu is None else round(broker_cpu, 1),
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    half = [s for s in samples if s["t_s"] >= samples[-1]["t_s"] / 2]
    slope = (
        float(np.polyfit([s["t_s"] for s in half], [s["rss_mb"] for s in half], 1)[0]) * 60
        if len(half) >= 2
        else 0.0
    )
    return {
        "events": n,
        "handled": samples[-1]["handled"] if samples else 0,
        "seconds": round(elapsed, 1),
        "rate_per_s": round(n / (edges[1] - edges[0]), 1) if len(edges) == 2 else None,
        "rate_note": "events / (the n-th handled - the first handled); the producer's own rate is "
        "events / cpu.producer_wall_s: the consumer cannot be faster than it",
        "rss_mb_first": samples[0]["rss_mb"] if samples else None,
        "rss_mb_last": samples[-1]["rss_mb"] if samples else None,
        "rss_mb_max": max(s["rss_mb"] for s in samples) if samples else None,
        "rss_slope_mb_per_min_second_half": round(slope, 3),
        "max_lag": max(s["lag"] for s in samples) if samples else None,
        "cpu": cpu,
        "samples": samples,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--messages", type=int, default=200_000, help="backlog read by each consumer")
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--change-fraction", type=float, default=0.001, help="statuses that change a state")
    ap.add_argument("--soak-s", type=float, default=600.0, help="soak length [s] (the issue asks for 600)")
    ap.add_argument("--soak-rate", type=float, default=20_000.0, help="events per second during the soak")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    ran_on = commit()  # at the start: the code this process loaded (others commit meanwhile)
    from pyros_common.logs import configure_logging

    configure_logging("WARNING", "console")  # a log line per device change would be measured too
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}pyros.device.status"
    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    await admin.close()
    data = payloads(args.devices, args.change_fraction)
    produce_s = await produce(args.bootstrap, topic, data, args.messages)
    print(f"produced {args.messages} in {produce_s:.1f} s", flush=True)
    bare_rate, bare_cpu = await bare(args.bootstrap, topic, args.messages)
    print(f"bare aiokafka: {bare_rate:,.0f}/s ({bare_cpu:.1f} µs CPU per event)", flush=True)
    noop_rate, noop_cpu = await bus_noop(args.bootstrap, prefix, args.messages)
    print(f"PyROS bus, no-op handler: {noop_rate:,.0f}/s ({noop_cpu:.1f} µs CPU per event)", flush=True)
    noop_many_rate, noop_many_cpu = await bus_noop(args.bootstrap, prefix, args.messages, batched=True)
    print(
        f"PyROS bus, no-op batch handler: {noop_many_rate:,.0f}/s ({noop_many_cpu:.1f} µs CPU per event)",
        flush=True,
    )
    db_url, (conn, dbname) = make_db()
    run = MonitoringRun(args.bootstrap, prefix, db_url)
    try:
        mon_rate, mon_cpu = await monitoring_throughput(run, args.messages)
        print(f"monitoring: {mon_rate:,.0f}/s ({mon_cpu:.1f} µs CPU per event)", flush=True)
        soaked = await soak(run, args, topic) if args.soak_s > 0 else None
        if soaked:
            print(
                f"soak: {soaked['rate_per_s']:,.0f}/s over {soaked['seconds']} s, RSS {soaked['rss_mb_first']} -> "
                f"{soaked['rss_mb_last']} MB (slope {soaked['rss_slope_mb_per_min_second_half']} MB/min), "
                f"max lag {soaked['max_lag']:,.0f}; CPU {soaked['cpu']}",
                flush=True,
            )
    finally:
        await run.host.stop()
        run.db.dispose()
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.close()
    result = {
        "benchmark": "status_throughput",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": ran_on,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine(),
        "target": {"events_per_s": 20_000, "memory": "flat over a 10-minute soak"},
        "backlog": {
            "messages": args.messages,
            "produce_s": round(produce_s, 2),
            "bare_aiokafka_per_s": round(bare_rate, 1),
            "pyros_bus_noop_per_s": round(noop_rate, 1),
            "pyros_bus_noop_batched_per_s": round(noop_many_rate, 1),
            "monitoring_per_s": round(mon_rate, 1),
            "cpu_us_per_event": {
                "bare_aiokafka": round(bare_cpu, 1),
                "pyros_bus_noop": round(noop_cpu, 1),
                "pyros_bus_noop_batched": round(noop_many_cpu, 1),
                "monitoring": round(mon_cpu, 1),
            },
            "monitoring_vs_bare": round(mon_rate / bare_rate, 3),
            "monitoring_vs_bus_noop": round(mon_rate / noop_rate, 3),
        },
        "soak": soaked,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
