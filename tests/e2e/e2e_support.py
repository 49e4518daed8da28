"""End-to-end harness: real PyROS processes driven only through HTTP and the ``pyros`` command line.

Nothing here imports a service to drive the flow; the processes are the system under test.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from retime import Retimed, retime_event

ROOT = Path(__file__).resolve().parents[2]
PYROS = Path(sys.executable).parent / "pyros"
if not PYROS.exists():  # pragma: no cover - a venv without its console script
    PYROS = ROOT / ".venv" / "bin" / "pyros"

ADMIN_USER = "e2e-admin"
ADMIN_PASSWORD = "e2e-admin-password-" + uuid.uuid4().hex[:8]
ROUTINE_PROGRAM = "E2E"

STARTUP_TIMEOUT_S = 60.0
FLOW_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.25

# Strings that betray a schema error leaking out as a "reason" instead of a sentence for humans.
SCHEMA_ERROR_MARKERS = ("validation error", "input_value", "less than or equal")

# Every process started by the harness, for the failure report (conftest adds their log tails).
STARTED: list[Proc] = []

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a PyROS process: ours minus any PYROS_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYROS_")}
    env["PYROS_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


@dataclass
class Proc:
    """One PyROS process (``pyros up`` or ``pyros run X``), its log in a file, stopped with SIGINT."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path = ROOT
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} is already running"
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== e2e: start #{self.starts}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest does not reach it; we signal it ourselves
            )
        if self not in STARTED:
            STARTED.append(self)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGINT (Ctrl-C), then wait; kill it (and say so) if it does not stop in time."""
        p = self.popen
        if p is None:
            return 0
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                self.exit_codes.append(p.returncode)
                raise AssertionError(
                    f"{self.name} did not stop within {timeout_s:.0f} s of SIGINT; killed it\n" + self.tail()
                ) from None
        self.exit_codes.append(p.returncode)
        return p.returncode

    def tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"(no log: {exc})"
        return f"--- {self.name} log ({self.log_path}), last {min(lines, len(text))} lines ---\n" + "\n".join(
            text[-lines:]
        )


def run_cli(
    args: Iterable[str], *, env: Mapping[str, str], stdin: str = "", timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """``pyros ARGS`` to completion; raises with its output if it fails."""
    argv = [str(PYROS), *args]
    done = subprocess.run(
        argv, cwd=ROOT, env=dict(env), input=stdin, capture_output=True, text=True, timeout=timeout_s
    )
    if done.returncode != 0:
        raise AssertionError(
            f"`{' '.join(argv[1:])}` exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        )
    return done


class Api:
    """The REST API under ``/api/v1`` with a bearer token; remembers the last answer for reports."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url + "/api/v1", timeout=30)
        self.token = token
        self.last: str = "(no answer yet)"

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        r = self.http.request(method, path, headers=headers, **kwargs)
        self.last = f"{method} {path} -> {r.status_code} {r.text[:3000]}"
        return r

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def login(self, user: str, password: str) -> str:
        r = self.post("/login/access-token", data={"username": user, "password": password})
        assert r.status_code == 200, self.last
        self.token = str(r.json()["access_token"])
        return self.token


def poll(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout_s: float = FLOW_TIMEOUT_S,
    report: Callable[[], str] = lambda: "",
) -> T:
    """Call ``probe`` every POLL_S until it returns something other than None (bounded)."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while True:
        try:
            value = probe()
        except (httpx.TransportError, ValueError) as exc:  # process not listening yet, bad JSON
            value, last_error = None, f"{type(exc).__name__}: {exc}"
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up waiting ({timeout_s:.0f} s) for {what}"
                + (f"\nlast error: {last_error}" if last_error else "")
                + (f"\n{report()}" if report else "")
            )
        time.sleep(POLL_S)


def wait_healthy(
    api: Api,
    procs: Iterable[Proc],
    *,
    services: Iterable[str] | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> dict[str, Any]:
    """Wait for GET /api/v1/health: 200 and every listed service ENABLED (all of them by default)."""
    procs = list(procs)
    wanted = None if services is None else set(services)

    def probe() -> dict[str, Any] | None:
        for p in procs:
            if not p.running:
                raise AssertionError(f"{p.name} exited (code {p.popen and p.popen.poll()})\n{p.tail()}")
        r = api.get("/health")
        if r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        states = {k: v.get("state") for k, v in body.get("services", {}).items()}
        if wanted is None:
            return body if body.get("status") == "ok" else None
        return body if all(states.get(s) == "ENABLED" for s in wanted) else None

    return poll(
        "GET /api/v1/health to report the services ENABLED",
        probe,
        timeout_s=timeout_s,
        report=lambda: api.last + "\n" + "\n".join(p.tail(40) for p in procs),
    )


def bootstrap(api: Api, *, db_url: str, env: Mapping[str, str]) -> None:
    """Create the admin user (CLI, direct database), log in, and create the programs (HTTP)."""
    run_cli(
        ["users", "create", ADMIN_USER, "--role", "admin", "--password-stdin"],
        env={**env, "PYROS_DATABASE_URL": db_url},
        stdin=ADMIN_PASSWORD + "\n",
    )
    api.login(ADMIN_USER, ADMIN_PASSWORD)
    # Alert strategies book their requests on program GRB (services/alerts/.../strategies/*.yaml);
    # the routine requests of these tests use a program of their own.
    for code, grade, quota in (("GRB", "A", 30.0), (ROUTINE_PROGRAM, "A", 30.0)):
        r = api.post(
            "/programs", json={"code": code, "name": f"{code} (e2e)", "grade": grade, "quota_percent": quota}
        )
        assert r.status_code in (201, 409), api.last


# --- pyros up ---


@dataclass
class PyrosUp:
    """A running ``pyros up`` on its own port and data directory."""

    proc: Proc
    port: int
    data_dir: Path
    home: Path  # XDG_CONFIG_HOME of the CLI calls (pyros login keeps its token there)
    api: Api

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'pyros.db'}"

    def cli_env(self) -> dict[str, str]:
        return base_env(PYROS_DATABASE_URL=self.db_url, XDG_CONFIG_HOME=str(self.home))

    def start(self) -> None:
        self.proc.start()
        wait_healthy(self.api, [self.proc])

    def restart(self) -> None:
        """Stop with SIGINT, start again on the same port and data directory, log in again."""
        self.proc.stop()
        self.start()
        self.api.login(ADMIN_USER, ADMIN_PASSWORD)


def start_pyros_up(root: Path) -> PyrosUp:
    data_dir = root / "data"
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = Proc(
        name="pyros up",
        argv=[str(PYROS), "up", "--port", str(port), "--data-dir", str(data_dir)],
        env=base_env(XDG_CONFIG_HOME=str(home)),
        log_path=root / "pyros-up.log",
    )
    up = PyrosUp(proc=proc, port=port, data_dir=data_dir, home=home, api=Api(f"http://127.0.0.1:{port}"))
    up.start()
    bootstrap(up.api, db_url=up.db_url, env=up.cli_env())
    return up


@contextlib.contextmanager
def services_on_kafka(
    services: Sequence[str], *, kafka: str, prefix: str, pg_url: str, root: Path, **extra_env: str
) -> Iterator[tuple[Api, dict[str, str]]]:
    """``services`` and the gateway, each its own ``pyros run`` on real Kafka and PostgreSQL (a
    fresh database, migrated), an admin logged in; yields (api, env) and stops them with SIGINT."""
    env = base_env(
        PYROS_KAFKA_BOOTSTRAP=kafka,
        PYROS_TOPIC_PREFIX=prefix,
        PYROS_TOPIC_PARTITIONS="1",
        PYROS_DATABASE_URL=pg_url,
        PYROS_DATA_DIR=str(root / "data"),
        PYROS_JWT_SECRET=secrets.token_hex(32),
        XDG_CONFIG_HOME=str(root / "home"),
        **extra_env,
    )
    run_cli(["db", "upgrade"], env=env)
    gateway_port = free_port()
    procs = [
        Proc(
            name=f"pyros run {name}",
            argv=[str(PYROS), "run", name],
            env={
                **env,
                "PYROS_HTTP_PORT": str(gateway_port if name == "gateway" else free_port()),
                "PYROS_HTTP_HOST": "127.0.0.1",
            },
            log_path=root / f"{name}.log",
        )
        for name in (*services, "gateway")
    ]
    api = Api(f"http://127.0.0.1:{gateway_port}")
    try:
        for p in procs:
            p.start()
        wait_healthy(api, procs, services=services)
        bootstrap(api, db_url=pg_url, env=env)
        yield api, env
    finally:
        api.close()
        errors = []
        for p in reversed(procs):
            try:
                p.stop()
            except AssertionError as exc:
                errors.append(str(exc))
        for p in procs:
            if p in STARTED:
                STARTED.remove(p)
        assert not errors, "\n".join(errors)


# --- packets -------------------------------------------------------------------------------------

_EVENT_SLOTS = itertools.count(1)
_last_slot: datetime | None = None


def event_time() -> datetime:
    """A burst time in the recent past, at least 5 minutes from every other one handed out in this
    process, so that packets of different test events never match across missions (60 s window)."""
    global _last_slot
    t = datetime.now(UTC) - timedelta(minutes=5 * next(_EVENT_SLOTS))
    if _last_slot is not None and t > _last_slot - timedelta(minutes=5):
        t = _last_slot - timedelta(minutes=5)
    _last_slot = t
    return t.replace(microsecond=0)


def fresh_tag() -> str:
    return uuid.uuid4().hex


def post_packet(api: Api, xml: bytes) -> dict[str, Any]:
    r = api.post("/alerts/voevents", content=xml, headers={"Content-Type": "application/xml"})
    assert r.status_code == 202, api.last
    body: dict[str, Any] = r.json()
    return body


def find_alert(api: Api, *, ivorn: str, mission: str) -> dict[str, Any] | None:
    """The alert (detail) holding the packet ``ivorn``, if the API lists it."""
    r = api.get("/alerts", params={"mission": mission, "limit": 500})
    if r.status_code != 200:
        return None
    for item in r.json().get("items", []):
        d = api.get(f"/alerts/{item['id']}")
        if d.status_code == 200 and any(p.get("ivorn") == ivorn for p in d.json().get("packets", [])):
            detail: dict[str, Any] = d.json()
            return detail
    return None


def wait_alert_request(api: Api, *, ivorn: str, mission: str, report: Callable[[], str]) -> dict[str, Any]:
    """Poll until the alert holding ``ivorn`` shows a request_id; returns the alert."""

    def probe() -> dict[str, Any] | None:
        a = find_alert(api, ivorn=ivorn, mission=mission)
        return a if a is not None and a.get("request_id") else None

    return poll(f"an alert with a request_id for {ivorn}", probe, report=report)


def check_reason_is_human(reason: str, *, what: str) -> None:
    assert reason.strip(), f"{what}: empty reason"
    low = reason.lower()
    for marker in SCHEMA_ERROR_MARKERS:
        assert marker not in low, f"{what}: the reason is a schema error, not a sentence: {reason!r}"


ADMITTED = ("accepted", "scheduled", "executing")  # states of a request routines accepted


def wait_request_decided(api: Api, request_id: str, *, report: Callable[[], str]) -> dict[str, Any]:
    """Poll GET /requests/{id} until it answers 200 in accepted, scheduled (or already executing,
    when a running night starts it at once) or rejected."""

    def probe() -> dict[str, Any] | None:
        r = api.get(f"/requests/{request_id}")
        if r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        return body if body.get("state") in (*ADMITTED, "rejected") else None

    req = poll(
        f"GET /api/v1/requests/{request_id} to answer 200 with state accepted/scheduled/rejected",
        probe,
        report=report,
    )
    if req["state"] == "rejected":
        check_reason_is_human(req.get("reason", ""), what=f"request {request_id} rejected")
    return req


# --- schedule ------------------------------------------------------------------------------------


def _matches(item: Mapping[str, Any], req: Mapping[str, Any], seq: Mapping[str, Any]) -> bool:
    if item.get("request_id") == req["id"] and item.get("sequence_id") == seq["id"]:
        return True
    return item.get("request") in (req["id"], req["name"]) and item.get("sequence") in (
        seq["id"],
        seq["name"],
    )


def placement(
    schedule: Mapping[str, Any], req: Mapping[str, Any], seq: Mapping[str, Any]
) -> tuple[str, str] | None:
    """Where a schedule answer puts a sequence: ("scheduled", "") or ("unscheduled", reason), or None."""
    doc = schedule.get("schedule") or {}
    ids = doc.get("scheduled_ids") or []
    for k, item in enumerate(doc.get("scheduled") or []):
        if _matches(item, req, seq):
            return ("scheduled", "")
        if k < len(ids) and _matches(ids[k], req, seq):
            return ("scheduled", "")
    for item in doc.get("unscheduled") or []:
        if _matches(item, req, seq):
            reason = " ".join(str(item.get(k) or "") for k in ("reason", "detail")).strip()
            return ("unscheduled", reason)
    return None


def wait_in_schedule(
    api: Api,
    req: Mapping[str, Any],
    *,
    newer_than: int | None = None,
    report: Callable[[], str],
) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """Poll GET /schedule until every sequence of ``req`` is either scheduled or unscheduled with a
    non-empty reason (and, with ``newer_than``, the version is newer). Returns (schedule, placements)."""
    seqs = list(req["sequences"])
    assert seqs, f"request {req['id']} has no sequence: {req}"

    def probe() -> tuple[dict[str, Any], dict[str, tuple[str, str]]] | None:
        r = api.get("/schedule")
        if r.status_code != 200:
            return None
        sch: dict[str, Any] = r.json()
        if newer_than is not None and int(sch.get("version") or 0) <= newer_than:
            return None
        where: dict[str, tuple[str, str]] = {}
        for seq in seqs:
            p = placement(sch, req, seq)
            if p is None or (p[0] == "unscheduled" and not p[1].strip()):
                return None
            where[seq["name"]] = p
        return sch, where

    names = ", ".join(s["name"] for s in seqs)
    return poll(
        f"GET /api/v1/schedule to name the sequences of {req['id']} ({names}) as scheduled or "
        "unscheduled with a reason" + (f", in a version newer than {newer_than}" if newer_than else ""),
        probe,
        report=report,
    )


def last_answer(api: Api) -> Callable[[], str]:
    """The failure report of a poll: what the API answered last (conftest adds the process logs)."""
    return lambda: f"last answer: {api.last}"


def accepted_request(api: Api, packet: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST a re-timed packet, wait for its alert's request_id, then for routines to decide the
    request (accepted / scheduled, or rejected with a human reason); returns (alert, request)."""
    ack = post_packet(api, packet.xml)
    assert ack.get("ivorn") == packet.ivorn, dumps(ack)
    alert = wait_alert_request(api, ivorn=packet.ivorn, mission=packet.mission, report=last_answer(api))
    req = wait_request_decided(api, alert["request_id"], report=last_answer(api))
    assert req["kind"] == "alert", dumps(req)
    return alert, req


def try_candidates(
    api: Api, candidates: Sequence[Sequence[str]]
) -> tuple[list[Retimed], dict[str, Any], dict[str, Any], list[str]]:
    """Re-time and post the first packet of each candidate event in turn until routines accepts
    its request; the others must be rejected with a reason for humans (e.g. never observable
    tonight: the test cannot choose the sky, only among corpus events spread in RA).
    Returns (re-timed packets of the last event tried, its alert, its request, what was tried)."""
    tried: list[str] = []
    assert candidates
    for paths in candidates:
        packets = retime_event(list(paths), when=event_time(), tag=fresh_tag())
        alert, req = accepted_request(api, packets[0])
        tried.append(f"{paths[0]}: {req['state']} {req.get('reason')!r}")
        if req["state"] in ADMITTED:
            break
    return packets, alert, req, tried


def first_accepted(
    api: Api, candidates: Sequence[Sequence[str]]
) -> tuple[list[Retimed], dict[str, Any], dict[str, Any]]:
    """``try_candidates``, and one of them must be accepted."""
    packets, alert, req, tried = try_candidates(api, candidates)
    assert req["state"] in ADMITTED, "no candidate event was accepted:\n" + "\n".join(tried)
    return packets, alert, req


def in_schedule(api: Api, req: Mapping[str, Any], newer_than: int | None = None) -> dict[str, Any]:
    """Wait for GET /schedule to name every sequence of ``req``; an unscheduled one needs a reason
    for humans. Returns the schedule answer."""
    sch, where = wait_in_schedule(api, req, newer_than=newer_than, report=last_answer(api))
    for name, (state, reason) in where.items():
        if state == "unscheduled":
            check_reason_is_human(reason, what=f"sequence {name} unscheduled")
    return sch


# --- sky -----------------------------------------------------------------------------------------

SPM_LAT_DEG = 31.0439  # gft-spm (examples/sites/spm-node.toml)
SPM_LON_DEG = -115.4637


def lst_deg(t: datetime, lon_deg: float = SPM_LON_DEG) -> float:
    """Local mean sidereal time [deg] (IAU 1982 GMST; seconds of accuracy are plenty here)."""
    jd = t.timestamp() / 86400.0 + 2440587.5
    d = jd - 2451545.0
    gmst = 280.46061837 + 360.98564736629 * d
    return (gmst + lon_deg) % 360.0


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def target_up_tonight(ephemerides: Mapping[str, Any], now: datetime) -> tuple[float, float]:
    """(ra, dec) of a point that transits near the zenith in the middle of what is left of tonight,
    away from the Moon."""

    def t(key: str) -> datetime:
        return datetime.fromisoformat(str(ephemerides[key]).replace("Z", "+00:00"))

    dusk, dawn = t("astronomical_dusk"), t("astronomical_dawn")
    mid = max(now, dusk) + (dawn - max(now, dusk)) / 2
    ra0 = lst_deg(mid)
    moon_ra, moon_dec = ephemerides.get("moon_ra_deg"), ephemerides.get("moon_dec_deg")
    for dra in (0.0, 20.0, -20.0, 40.0, -40.0):
        ra = (ra0 + dra) % 360.0
        if moon_ra is None or separation_deg(ra, SPM_LAT_DEG, float(moon_ra), float(moon_dec)) > 45.0:
            return round(ra, 4), SPM_LAT_DEG
    return round(ra0, 4), SPM_LAT_DEG


def routine_document(name: str, ra: float, dec: float) -> dict[str, Any]:
    return {
        "schema": "pyros.request/1",
        "name": name,
        "program": ROUTINE_PROGRAM,
        "strategy": "best_effort",
        "kind": "routine",
        "sequences": [
            {
                "name": f"{name}-r",
                "target": {"name": f"{name} zenith field", "ra_deg": ra, "dec_deg": dec},
                "date": "tonight",
                "carry_over_nights": 0,
                "mandatory": False,
                "priority_offset": 0,
                "constraints": {"min_altitude_deg": 30, "max_airmass": 2.0, "min_moon_separation_deg": 20},
                "albums": [
                    {
                        "detector": "VIS",
                        "plans": [{"filter": "r", "exposure_s": 30, "count": 3, "dither_arcsec": []}],
                    }
                ],
            }
        ],
    }


def dumps(x: Any) -> str:
    return json.dumps(x, indent=1, default=str)[:4000]
