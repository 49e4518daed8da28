"""The main GRB flow with each service in its own process, on real Kafka and PostgreSQL.

``pyros run alerts | routines | scheduler | gateway`` (production mode), a per-test topic prefix
and a fresh PostgreSQL database (tests/conftest.py), migrated with ``pyros db upgrade``. One SVOM
and one Swift packet, re-timed to now, must each become an accepted request that the schedule
names (or, as in test_grb_flow.py, a request rejected with a reason for humans; their RAs are 11 h
apart, so at least one of them is up at night in any season and must be accepted). With CI=true a missing broker or database fails (the shared fixtures), never skips.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    PYROS,
    STARTED,
    Api,
    Proc,
    accepted_request,
    base_env,
    bootstrap,
    dumps,
    event_time,
    free_port,
    fresh_tag,
    in_schedule,
    run_cli,
    wait_healthy,
)
from retime import retime

pytestmark = pytest.mark.integration

SERVICES = ("alerts", "routines", "scheduler")
PACKETS = ("svom/sb26022802_eclairs-wakeup.xml", "swift/bat_grb_pos_1125809.xml")


@pytest.fixture
def kafka_gateway(
    kafka_bootstrap: str, topic_prefix: str, pg_url: str, tmp_path: Path
) -> Iterator[tuple[Api, dict[str, str]]]:
    """alerts, routines, scheduler and the gateway, each its own ``pyros run``; yields (api, env)."""
    env = base_env(
        PYROS_KAFKA_BOOTSTRAP=kafka_bootstrap,
        PYROS_TOPIC_PREFIX=topic_prefix,
        PYROS_TOPIC_PARTITIONS="1",
        PYROS_DATABASE_URL=pg_url,
        PYROS_DATA_DIR=str(tmp_path / "data"),
        PYROS_JWT_SECRET=secrets.token_hex(32),
        XDG_CONFIG_HOME=str(tmp_path / "home"),
    )
    run_cli(["db", "upgrade"], env=env)
    procs: list[Proc] = []
    gateway_port = free_port()
    for name in (*SERVICES, "gateway"):
        port = gateway_port if name == "gateway" else free_port()
        procs.append(
            Proc(
                name=f"pyros run {name}",
                argv=[str(PYROS), "run", name],
                env={**env, "PYROS_HTTP_PORT": str(port), "PYROS_HTTP_HOST": "127.0.0.1"},
                log_path=tmp_path / f"{name}.log",
            )
        )
    api = Api(f"http://127.0.0.1:{gateway_port}")
    try:
        for p in procs:
            p.start()
        wait_healthy(api, procs, services=SERVICES)
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


def test_svom_and_swift_packets_become_accepted_requests_in_the_schedule(
    kafka_gateway: tuple[Api, dict[str, str]],
) -> None:
    api, _env = kafka_gateway
    accepted = []
    for path in PACKETS:
        packet = retime(path, when=event_time(), tag=fresh_tag())
        _, req = accepted_request(api, packet)  # rejected only with a reason for humans
        if req["state"] == "rejected":
            continue
        assert req["state"] in ("accepted", "scheduled"), f"{path}: {dumps(req)}"
        in_schedule(api, req)
        accepted.append(path)
    assert accepted, f"neither {PACKETS[0]} nor {PACKETS[1]} was accepted"
