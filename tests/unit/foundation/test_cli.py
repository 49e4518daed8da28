"""The two process-level promises: `pyros up` is healthy within 20 s; a missing broker is one sentence."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]
PYROS = str(ROOT / ".venv" / "bin" / "pyros")
SERVICES = {
    "alerts",
    "routines",
    "scheduler",
    "majordome",
    "monitoring",
    "observer",
    "analyzer",
    "device-gateway",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pyros_up_lists_all_services_enabled_and_serves_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYROS_LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [PYROS, "up", "--port", str(port), "--data-dir", str(tmp_path / "var")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60  # generous for a loaded machine; the 20 s promise is measured below
        health = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                health = r.json()
                if all(v["state"] == "ENABLED" for v in health["services"].values()):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        assert health is not None, "the gateway never answered"
        assert set(health["services"]) == SERVICES
        assert {v["state"] for v in health["services"].values()} == {"ENABLED"}, health
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        names = {f.name for f in text_string_to_metric_families(metrics)}
        assert {"pyros_events_produced", "pyros_service_state", "pyros_heartbeat_timestamp_seconds"} <= names
        assert (
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()["openapi"].startswith("3.1")
        )
        assert (tmp_path / "var" / "pyros.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert b"Traceback" not in out


def test_run_without_kafka_prints_one_sentence_and_keeps_retrying(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYROS_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "PYROS_HTTP_PORT": str(free_port()),
        "PYROS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "PYROS_STARTUP_RETRY_MAX_S": "1",
    }
    proc = subprocess.Popen(
        [PYROS, "run", "alerts"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 40
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        buf = b""
        while time.monotonic() < deadline and sum("still waiting" in ln for ln in lines) < 2:
            chunk = proc.stdout.read() or b""
            buf += chunk
            lines = buf.decode(errors="replace").splitlines()
            time.sleep(0.2)
        assert proc.poll() is None, "the service must keep retrying, not exit"
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        lines = (buf + rest).decode(errors="replace").splitlines()
    text = "\n".join(lines)
    first = [ln for ln in lines if "unreachable" in ln]
    assert first, text
    assert "Kafka at 127.0.0.1:1 is unreachable" in first[0] and "scripts/kafka.sh start" in first[0]
    assert sum("still waiting" in ln for ln in lines) >= 2, text
    assert "Traceback" not in text
    assert proc.returncode == 0


# Heavy libraries `pyros --help` must never load: the help is read before anything runs.
# (pydantic is not here: typer itself uses it to convert parameters.)
HEAVY = ("astropy", "numpy", "sqlalchemy", "fastapi", "starlette", "httpx", "pyros_common", "pyros_routines")


def imported_modules(*args: str) -> set[str]:
    """Every module a fresh interpreter imports to run ``args`` (from ``-X importtime``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYROS_")}
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {
        ln.split("|")[-1].strip()
        for ln in proc.stderr.splitlines()
        if ln.startswith("import time:") and "|" in ln
    } - {"imported package"}


def test_importing_pyros_common_loads_no_astropy() -> None:
    mods = imported_modules("-c", "import pyros_common")
    assert "pyros_common" in mods
    assert not {m for m in mods if m.split(".")[0] == "astropy"}


def test_help_loads_only_typer_and_the_standard_library() -> None:
    for argv in (
        ["--help"],
        ["request", "--help"],
        ["users", "--help"],
        ["programs", "--help"],
        ["devices", "probe", "--help"],
    ):
        mods = imported_modules("-m", "pyros_cli.main", *argv)
        assert "typer" in mods and "pyros_cli.routines_cmd" in mods, argv
        heavy = sorted(m for m in mods if any(m == h or m.startswith(h + ".") for h in HEAVY))
        assert heavy == [], (argv, heavy[:10])
