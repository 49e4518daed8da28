"""``pyros run device-gateway`` and ``pyros run gateway`` as two processes on real Kafka and PostgreSQL:
the gateway lists the devices device-gateway publishes on pyros.device.status, with their states."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

PYROS = str(Path(sys.executable).parent / "pyros")
PASSWORD = "gateway-integration-password"
DEVICES = {
    "telescope",
    "cam-vis",
    "cam-nir",
    "filterwheel",
    "focuser",
    "dome",
    "weather",
    "plc",
    "cloud-sensor",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def env(kafka_bootstrap: str, topic_prefix: str, pg_url: str, tmp_path: Path) -> dict[str, str]:
    e = {
        **os.environ,
        "PYROS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PYROS_TOPIC_PREFIX": topic_prefix,
        "PYROS_DATABASE_URL": pg_url,
        "PYROS_DATA_DIR": str(tmp_path),
        "PYROS_JWT_SECRET": "s" * 40,
        "PYROS_HTTP_HOST": "127.0.0.1",
    }
    subprocess.run([PYROS, "db", "upgrade"], env=e, check=True, capture_output=True, timeout=120)
    subprocess.run(
        [PYROS, "users", "create", "root", "--role", "admin", "--password-stdin"],
        env=e,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return e


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[int]:
    """Start device-gateway and the gateway; yield the gateway's port; stop both."""
    port = _free_port()
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    for name, p in (("device-gateway", _free_port()), ("gateway", port)):
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [PYROS, "run", name], env={**env, "PYROS_HTTP_PORT": str(p)}, stdout=out, stderr=out
            )
        procs.append((proc, log))
    try:
        yield port
    finally:
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, log in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print(log.read_text(errors="replace")[-4000:])


def _devices(port: int, deadline_s: float) -> list[dict[str, Any]]:
    """GET /api/v1/devices until every device has a state, or the deadline."""
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + deadline_s
    token = ""
    listed: list[dict[str, Any]] = []
    while time.monotonic() < end:
        try:
            if not token:
                r = httpx.post(
                    f"{base}/api/v1/login/access-token", data={"username": "root", "password": PASSWORD}
                )
                r.raise_for_status()
                token = r.json()["access_token"]
            r = httpx.get(f"{base}/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            listed = r.json()
            if {d["device_id"] for d in listed} == DEVICES and all(d["state"] for d in listed):
                return listed
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    return listed


def test_the_gateway_lists_the_devices_device_gateway_publishes(processes: int) -> None:
    listed = _devices(processes, deadline_s=90.0)
    by_id = {d["device_id"]: d for d in listed}
    assert set(by_id) == DEVICES, listed
    assert all(d["state"] is not None and d["ok"] for d in listed), listed
    assert all(not d["updated_at"].startswith("1970") for d in listed), listed
    assert by_id["telescope"]["state"] == "parked"
