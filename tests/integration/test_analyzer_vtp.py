"""Our VOEvent through a real Comet broker: submitted to its receiver (VTP), acked, and broadcast to a
subscriber (a partner node) byte-for-byte with our IVORN and the alert's citation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyros_analyzer.domain.voevent import CandidateReport, build
from pyros_analyzer.vtp import submit

ROOT = Path(__file__).resolve().parents[2]
TWISTD = Path(os.environ.get("PYROS_CACHE_DIR", ROOT / ".cache")) / "comet-venv" / "bin" / "twistd"


pytestmark = [pytest.mark.integration, pytest.mark.comet]

REPORT = CandidateReport(
    alert_ivorn="ivo://org.svom/fsc#sb26030408_eclairs-wakeup",
    candidate_id="it-vtp-c1",
    ra_deg=47.08,
    dec_deg=40.94,
    error_arcsec=0.2,
    magnitude=15.4,
    magnitude_error=0.01,
    filter="r",
    observed_at=datetime(2026, 12, 16, 6, 12, tzinfo=UTC),
    since_trigger_s=130.0,
    confidence=0.95,
    n_detections=2,
    fading_slope=2.5,
)


@dataclass
class Comet:
    receive_port: int
    broadcast_port: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def comet_broker() -> Iterator[Comet]:
    """Comet (scripts/comet.sh's venv) on free ports with its own event database, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="pyros-comet-") as tmp:
        rp, bp = _free_port(), _free_port()
        (Path(tmp) / "eventdb").mkdir()
        args = [
            str(TWISTD),
            "-n",
            "--pidfile=",
            f"--logfile={Path(tmp) / 'comet.log'}",
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
        ]
        proc = subprocess.Popen(
            args, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 60
            while not (_open(rp) and _open(bp)):
                assert proc.poll() is None and time.monotonic() < deadline, "Comet did not start"
                time.sleep(0.2)
            yield Comet(rp, bp)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = struct.unpack("!I", await reader.readexactly(4))[0]
    return await reader.readexactly(size)


async def test_our_voevent_reaches_a_subscriber_through_comet() -> None:
    assert TWISTD.exists(), "no Comet venv: scripts/comet.sh start builds .cache/comet-venv"
    packet = build(REPORT, stream="ivo://pyros/gft", author_ivorn="ivo://pyros/gft", now=datetime.now(UTC))
    with comet_broker() as comet:
        reader, writer = await asyncio.open_connection("127.0.0.1", comet.broadcast_port)
        try:
            await asyncio.sleep(0.5)  # the broker registers the subscriber
            reply = await submit("127.0.0.1", comet.receive_port, packet, timeout_s=20.0)
            assert b'role="ack"' in reply, reply

            async def until_ours() -> bytes:
                while True:
                    frame = await _read_frame(reader)
                    if b"ivo://pyros/gft#it-vtp-c1" in frame:
                        return frame

            got = await asyncio.wait_for(until_ours(), 20.0)
        finally:
            writer.close()
            await writer.wait_closed()
    assert REPORT.alert_ivorn.encode() in got and b'role="observation"' in got


async def test_a_refused_packet_is_a_clear_error() -> None:
    assert TWISTD.exists(), "no Comet venv: scripts/comet.sh start builds .cache/comet-venv"
    with comet_broker() as comet, pytest.raises(ValueError, match="refused"):
        await submit("127.0.0.1", comet.receive_port, b"<not-a-voevent/>", timeout_s=20.0)
