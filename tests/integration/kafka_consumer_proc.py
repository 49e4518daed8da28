"""A consumer process for the kill-and-restart test: KafkaBus + PostgreSQL idempotent store.

Every delivery is logged in ``deliveries`` (at-least-once evidence); the effect is recorded
in ``processed_events`` through Database.mark_processed in the same transaction.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime

from pyros_common.bus.kafka import KafkaBus
from pyros_common.contracts import DeviceStatus, Event
from pyros_common.db import Database
from sqlalchemy import text


async def main(bootstrap: str, prefix: str, db_url: str) -> None:
    db = Database(db_url)
    bus = KafkaBus(bootstrap=bootstrap, topic_prefix=prefix, partitions=3, max_batch=200)

    def effect(event_id: str) -> None:
        with db.session() as s:
            s.execute(text("INSERT INTO deliveries (event_id) VALUES (:e)"), {"e": event_id})
            db.mark_processed(s, "killtest", event_id, datetime.now(UTC))

    async def handler(ev: Event) -> None:
        await asyncio.to_thread(effect, str(ev.event_id))

    bus.subscribe(DeviceStatus.topic, "killtest", handler)
    await bus.start()
    print("READY", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await bus.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
