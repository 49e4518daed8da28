"""The first run, as a newcomer meets it: `pyros up` makes the first admin and says so once;
the direct-database commands find `pyros up`'s database; a client with no server is one line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
PYROS = str(ROOT / ".venv" / "bin" / "pyros")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a newcomer: no PYROS_* variable (CI may set PYROS_DATABASE_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYROS_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env.update(extra)
    return env


def pyros(*args: str, cwd: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYROS, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    out: bytearray = field(default_factory=bytearray)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> str:
        pipe = self.proc.stdout
        if pipe is not None and not pipe.closed:
            self.out += pipe.read() or b""
        return self.out.decode(errors="replace")

    def wait_until(self, what: str, deadline_s: float = 90) -> None:
        """Until every service is ENABLED and ``what`` is on stdout."""
        deadline = time.monotonic() + deadline_s
        healthy = False
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stdout + self.log.read_text()[-3000:]
            if not healthy:
                try:
                    health = httpx.get(f"{self.url}/api/v1/health", timeout=2).json()
                    healthy = all(v["state"] == "ENABLED" for v in health["services"].values())
                except httpx.HTTPError:
                    pass
            if healthy and what in self.stdout:
                return
            time.sleep(0.2)
        raise AssertionError(f"no {what!r} within {deadline_s} s:\n{self.stdout}")


@contextmanager
def pyros_up(cwd: Path, env: dict[str, str], name: str) -> Iterator[Up]:
    port = free_port()
    log = cwd / f"{name}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [PYROS, "up", "--port", str(port)], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err
        )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    up = Up(proc, port, log)
    try:
        yield up
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        _ = up.stdout  # what was printed on the way out
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0, up.stdout + log.read_text()[-3000:]


def login(url: str, user: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/login/access-token", data={"username": user, "password": password}, timeout=10
    )


def test_first_up_makes_an_admin_once_and_the_commands_find_its_database(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    with pyros_up(tmp_path, env, "first") as up:
        up.wait_until("pyros request submit examples/m31.json")
        text = up.stdout
        m = re.search(r"^\s*password\s+(\S+)\s*$", text, re.MULTILINE)
        assert m, text
        password = m.group(1)
        assert len(password) >= 12
        assert re.search(rf"^\s*URL\s+{re.escape(up.url)}\b", text, re.MULTILINE), text
        assert re.search(r"^\s*user\s+admin\s*$", text, re.MULTILINE), text
        assert f"pyros login --url {up.url} --user admin" in text
        assert "pyros programs create" in text and "one" in text  # says the password is one-time
        assert "program" in text and "GRB (grade A" in text  # alerts can become requests at once
        assert text.count(password) == 1, "the password is printed once"
        answer = login(up.url, "admin", password)
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_type"].lower() == "bearer"
        assert login(up.url, "admin", password + "x").status_code == 401
    assert password not in up.log.read_text(), "the password must not be in the logs"

    # Without PYROS_DATABASE_URL, the direct-database commands open var/pyros.db under the cwd...
    r = pyros("programs", "create", "EXO", "--grade", "A", cwd=tmp_path, env=env)
    assert r.returncode == 0 and "program EXO" in r.stdout, r.stderr
    r = pyros("users", "create", "alice", "--password-stdin", cwd=tmp_path, env=env, stdin="alice-pw-1\n")
    assert r.returncode == 0 and "user alice" in r.stdout, r.stderr
    # ... or PYROS_DATA_DIR's, from anywhere.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env_dd = {**env, "PYROS_DATA_DIR": str(tmp_path / "var")}
    r = pyros("users", "passwd", "admin", "--password-stdin", cwd=elsewhere, env=env_dd, stdin="admin-pw-2\n")
    assert r.returncode == 0, r.stderr
    assert not (elsewhere / "var").exists()

    with pyros_up(tmp_path, env, "second") as up:
        up.wait_until("PyROS is up")
        assert login(up.url, "alice", "alice-pw-1").status_code == 200
        assert login(up.url, "admin", "admin-pw-2").status_code == 200
        assert login(up.url, "admin", password).status_code == 401
        time.sleep(1.0)  # the first-run block would come within 0.3 s of "PyROS is up"
    assert "password" not in up.stdout and "first run" not in up.stdout, up.stdout


def test_direct_database_commands_without_pyros_up_say_so_in_one_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    for args, stdin in (
        (["users", "create", "bob", "--password-stdin"], "bob-pw-123\n"),
        (["users", "passwd", "bob", "--password-stdin"], "bob-pw-123\n"),
        (["programs", "create", "GRB"], ""),
    ):
        r = pyros(*args, cwd=tmp_path, env=env, stdin=stdin)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert f"no PyROS database at {tmp_path / 'var' / 'pyros.db'}" in lines[0]
        assert "pyros up" in lines[0] and "PYROS_DATABASE_URL" in lines[0]
    assert not (tmp_path / "var").exists(), "nothing is created"


def test_client_commands_without_a_server_say_so_in_one_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    for args, stdin in (
        (["request", "list", "--url", url], ""),
        (["request", "submit", str(ROOT / "examples" / "m31.json"), "--url", url], ""),
        (["login", "--url", url, "--user", "admin", "--password-stdin"], "whatever-pw\n"),
    ):
        r = pyros(*args, cwd=tmp_path, env=env, stdin=stdin)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert lines == [
            f"pyros: no PyROS at {url} (connection refused); start it with `pyros up` (or `make up`)"
        ]
