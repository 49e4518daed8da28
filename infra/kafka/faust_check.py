"""Check that faust-streaming works against the local test broker (scripts/kafka.sh start).

A tiny Faust app: one agent consumes a topic and counts events per key in a Table
(backed by a changelog topic); a task produces the events once the worker is up.
Exits 0 when the agent has seen every event and the Table holds the expected counts.

    .venv/bin/python infra/kafka/faust_check.py [--broker 127.0.0.1:9092] [--events 30]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections import Counter

import faust

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--broker", default="127.0.0.1:9092")
parser.add_argument("--events", type=int, default=30)
parser.add_argument("--timeout", type=float, default=60.0)
args = parser.parse_args()

run_id = uuid.uuid4().hex[:8]
KEYS = ["alpha", "beta", "gamma"]
expected = Counter(KEYS[i % len(KEYS)] for i in range(args.events))

app = faust.App(
    f"pyros-faust-check-{run_id}",
    broker=f"kafka://{args.broker}",
    store="memory://",
    topic_partitions=3,
    topic_replication_factor=1,
    web_enabled=False,
)
# internal=True: the worker creates the topic at startup (CreateTopics), like the Table changelog.
topic = app.topic(
    f"pyros-faust-check-{run_id}",
    key_type=str,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=3,
    internal=True,
)
counts = app.Table("counts", default=int, partitions=3)

result: dict[str, object] = {"ok": False, "seen": 0}
t0 = time.monotonic()
_bg: list[asyncio.Future[None]] = []  # keep references to fire-and-forget tasks


async def finish(ok: bool, why: str) -> None:
    if result.get("why"):
        return
    result["ok"] = ok
    result["why"] = why
    await worker.stop()


@app.agent(topic)
async def count_events(stream: faust.StreamT[bytes]) -> None:
    async for key, _value in stream.items():
        key = key.decode() if isinstance(key, bytes) else key
        counts[key] += 1
        result["seen"] = int(result["seen"]) + 1  # type: ignore[call-overload]
        if result["seen"] == args.events:
            table_state = {k: counts[k] for k in KEYS}
            ok = table_state == dict(expected)
            _bg.append(asyncio.ensure_future(finish(ok, f"table={table_state} expected={dict(expected)}")))


@app.task
async def produce() -> None:
    for i in range(args.events):
        await topic.send(key=KEYS[i % len(KEYS)], value=f"event-{i}".encode())
    print(f"faust_check: produced {args.events} events to {topic.get_topic_name()}", flush=True)


@app.timer(interval=args.timeout)  # first fires after one interval
async def give_up() -> None:
    if time.monotonic() - t0 >= args.timeout:
        await finish(False, f"timeout after {args.timeout}s, agent saw {result['seen']} events")


worker = faust.Worker(app, loglevel="WARNING", quiet=True)
logging.getLogger("faust").setLevel(logging.WARNING)
try:
    worker.execute_from_commandline()
except SystemExit:
    pass
elapsed = time.monotonic() - t0


async def delete_check_topics() -> None:
    """Best effort: drop the topics this run created (source, changelog, assignor)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=args.broker, request_timeout_ms=10_000)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"pyros-faust-check-{run_id}")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


try:
    asyncio.run(delete_check_topics())
except Exception as exc:
    print(f"faust_check: (could not delete check topics: {exc!r})")
status = "OK" if result["ok"] else "FAILED"
print(
    f"faust_check: {status} in {elapsed:.1f}s: agent saw {result['seen']}/{args.events} events; {result.get('why')}"
)
sys.exit(0 if result["ok"] else 1)
