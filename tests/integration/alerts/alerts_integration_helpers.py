"""Helpers for the alerts integration tests and the benchmark: a real Comet broker, the service on Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from pyros_alerts.app import AlertsService
from pyros_alerts.settings import AlertsSettings
from pyros_common.bus.kafka import KafkaBus
from pyros_common.clock import SystemClock
from pyros_common.db import Database
from pyros_common.runtime.host import ServiceHost
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMET_VENV = Path(os.environ.get("PYROS_CACHE_DIR", ROOT / ".cache")) / "comet-venv"
TWISTD = COMET_VENV / "bin" / "twistd"
SENDVO = COMET_VENV / "bin" / "comet-sendvo"

SVOM_EVENT = (
    "svom/sb26042105_grm-trigger.xml",
    "svom/sb26042105_eclairs-wakeup.xml",
    "svom/sb26042105_mxt-initial.xml",
)
FERMI_EVENT = (
    "fermi/gbm_798437606_alert.xml",
    "fermi/gbm_798437606_flt_pos.xml",
    "fermi/gbm_798437606_gnd_pos.xml",
    "fermi/gbm_798437606_fin_pos.xml",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@dataclass
class Comet:
    receive_port: int
    broadcast_port: int
    log: Path

    def send(self, packet: Path) -> None:
        """Submit one packet as an author would (comet-sendvo waits for the broker's ack)."""
        done = subprocess.run(
            [str(SENDVO), "-h", "127.0.0.1", "-p", str(self.receive_port), "-f", str(packet)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"comet-sendvo failed for {packet.name}: {done.stdout}{done.stderr}")


@contextlib.contextmanager
def comet_broker() -> Iterator[Comet]:
    """A Comet broker on free ports, with its own event database, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="pyros-comet-") as tmp:
        rp, bp = free_port(), free_port()
        log = Path(tmp) / "comet.log"
        (Path(tmp) / "eventdb").mkdir()
        proc = subprocess.Popen(
            [
                str(TWISTD),
                "-n",
                "--pidfile=",
                f"--logfile={log}",
                "comet",
                "--receive",
                f"--receive-port={rp}",
                "--broadcast",
                f"--broadcast-port={bp}",
                "--local-ivo=ivo://pyros/test",
                f"--eventdb={Path(tmp) / 'eventdb'}",
                "--author-whitelist=127.0.0.0/8",
                "--subscriber-whitelist=127.0.0.0/8",
                "--broadcast-test-interval=0",
            ],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not (_port_open(rp) and _port_open(bp)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Comet did not start: {log.read_text() if log.exists() else ''}")
                time.sleep(0.2)
            yield Comet(rp, bp, log)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class RunningAlerts:
    service: AlertsService
    host: ServiceHost
    bus: KafkaBus
    db: Database


@contextlib.asynccontextmanager
async def alerts_on_kafka(
    *,
    bootstrap: str,
    prefix: str,
    db_url: str,
    vtp_port: int | None = None,
    gcn: bool = False,
    gcn_topics: list[str] | None = None,
) -> AsyncIterator[RunningAlerts]:
    """The alerts service on real Kafka (topics under ``prefix``) and the given database."""
    db = Database(db_url)
    db.upgrade()
    clock = SystemClock()
    settings = Settings(
        database_url=db_url,
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        topic_partitions=3,
        vtp_host="127.0.0.1" if vtp_port else None,
        vtp_port=vtp_port or 8099,
        gcn_bootstrap=bootstrap if gcn else None,
        gcn_client_id=None,
        heartbeat_s=30,
    )
    bus = KafkaBus(bootstrap=bootstrap, topic_prefix=prefix, clock=clock, producer="alerts")
    ctx = ServiceContext(bus=bus, clock=clock, settings=settings, db=db, registry=CollectorRegistry())
    extra = {"gcn_topics": gcn_topics} if gcn_topics is not None else {}
    svc = AlertsService(
        ctx, alerts_settings=AlertsSettings(gcn_topic_prefix=prefix, gcn_group="gcn", **extra)
    )
    host = ServiceHost(ctx, [svc])
    await host.start()
    await bus.wait_assigned()
    try:
        yield RunningAlerts(svc, host, bus, db)
    finally:
        await host.stop()
        db.dispose()


async def read_topic(
    bootstrap: str, topic: str, *, settle_s: float = 3.0, timeout_s: float = 60.0, until: Any = None
) -> list[dict[str, Any]]:
    """Every event on ``topic`` from the start, once nothing new arrived for ``settle_s``."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = loop.time()
    try:
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    out.append(json.loads(r.value))
                    last = loop.time()
            if loop.time() - last > settle_s and (until is None or until(out)):
                break
    finally:
        await consumer.stop()
    return out
