"""Probe the VOEvent Transport Protocol as spoken by the local Comet broker (scripts/comet.sh start).

Stdlib only. Two plain TCP subscribers connect to the broadcast port:
  * "polite" answers the broker's iamalive with an iamalive response and acks every VOEvent;
  * "silent" (optional, --silent) never sends anything, to observe how the broker treats it.
Then one VOEvent file is submitted to the receive port with comet-sendvo (from Comet's venv)
and every frame is printed: 4-byte big-endian length prefix, root element, role, sizes.

    .venv/bin/python infra/comet/vtp_probe.py [--file X.xml] [--wait-iamalive 130] [--silent]
"""

from __future__ import annotations

import argparse
import socket
import struct
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

REPO = Path(__file__).resolve().parents[2]
TRN = "http://www.telescope-networks.org/xml/Transport/v1.1"
LOCAL_IVO = "ivo://pyros/vtp-probe"
T0 = time.monotonic()
PAYLOADS: dict[str, bytes] = {}


def say(who: str, msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.2f}s] {who:>6}: {msg}", flush=True)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def read_frame(sock: socket.socket) -> tuple[bytes, bytes]:
    prefix = recv_exact(sock, 4)
    (length,) = struct.unpack("!I", prefix)  # network byte order, unsigned 32-bit
    return prefix, recv_exact(sock, length)


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack("!I", len(payload)) + payload)


def transport(role: str, origin: str) -> bytes:
    """A Transport reply as VTP expects: Origin = what we answer to, Response = our IVORN."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<trn:Transport xmlns:trn="{TRN}" version="1.0" role="{role}">'
        f"<Origin>{origin}</Origin><Response>{LOCAL_IVO}</Response><TimeStamp>{now}</TimeStamp>"
        f"</trn:Transport>"
    ).encode()


def subscriber(name: str, port: int, polite: bool, stop: threading.Event, seen: dict[str, list[str]]) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
    say(name, f"connected to broadcast port {port}")
    try:
        while not stop.is_set():
            try:
                prefix, payload = read_frame(sock)
            except TimeoutError:
                continue
            root = ET.fromstring(payload)
            role = root.get("role")
            tag = root.tag.split("}")[-1]
            seen.setdefault(name, []).append(f"{tag}:{role}")
            if tag == "VOEvent":
                PAYLOADS[name] = payload
            say(
                name,
                f"frame prefix={prefix.hex()} (={len(payload)} bytes) root=<{tag}> role={role} "
                f"ivorn={root.get('ivorn')} origin={root.findtext('Origin')}",
            )
            if not polite:
                continue
            if tag == "Transport" and role == "iamalive":
                send_frame(sock, transport("iamalive", root.findtext("Origin") or ""))
                say(name, "replied iamalive (Origin=broker ivo, Response=our ivo)")
            elif tag == "VOEvent":
                send_frame(sock, transport("ack", root.get("ivorn") or ""))
                say(name, "sent ack (Origin=event ivorn, Response=our ivo)")
    except (ConnectionError, OSError) as exc:
        say(name, f"DISCONNECTED: {exc}")
        seen.setdefault(name, []).append("disconnected")
    finally:
        sock.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--file",
        default=str(
            Path(__file__).resolve().parents[2] / "tests/data/voevents/svom/sb26042105_eclairs-wakeup.xml"
        ),
    )
    ap.add_argument("--receive-port", type=int, default=8098)
    ap.add_argument("--broadcast-port", type=int, default=8099)
    ap.add_argument(
        "--wait-iamalive", type=float, default=0.0, help="seconds to keep listening after the event"
    )
    ap.add_argument("--silent", action="store_true", help="also run a subscriber that never replies")
    args = ap.parse_args()

    stop = threading.Event()
    seen: dict[str, list[str]] = {}
    threads = [threading.Thread(target=subscriber, args=("polite", args.broadcast_port, True, stop, seen))]
    if args.silent:
        threads.append(
            threading.Thread(target=subscriber, args=("silent", args.broadcast_port, False, stop, seen))
        )
    for t in threads:
        t.start()
    time.sleep(1.0)

    sendvo = REPO / ".cache" / "comet-venv" / "bin" / "comet-sendvo"
    proc = subprocess.run(
        [str(sendvo), "--host=127.0.0.1", f"--port={args.receive_port}", f"--file={args.file}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    say("sendvo", f"exit={proc.returncode} out={(proc.stdout + proc.stderr).strip()[-300:]!r}")

    deadline = time.monotonic() + 10 + args.wait_iamalive
    while time.monotonic() < deadline:
        got_event = any(s.startswith("VOEvent") for s in seen.get("polite", []))
        if got_event and not args.wait_iamalive:
            break
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(timeout=5)
    say("probe", f"summary: {seen}")
    if "polite" in PAYLOADS:
        sent = Path(args.file).read_bytes()
        got = PAYLOADS["polite"]
        say(
            "probe",
            f"event bytes identical to the submitted file: {got == sent} ({len(got)} vs {len(sent)} bytes)",
        )
        if got != sent:
            say("probe", f"received starts with: {got[:120]!r}")
    ok = proc.returncode == 0 and any(s.startswith("VOEvent") for s in seen.get("polite", []))
    say("probe", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
