"""The main GRB flow with each service in its own process, on real Kafka and PostgreSQL.

``pyros run alerts | routines | scheduler | gateway`` (production mode), a per-test topic prefix
and a fresh PostgreSQL database (tests/conftest.py), migrated with ``pyros db upgrade``. One SVOM
and one Swift packet, re-timed to now, must each become an accepted request that the schedule
names (the Swift one may instead, as in test_grb_flow.py, be rejected with a reason for humans when
its fixed position is not up tonight; the SVOM one is picked among events spread in RA and must be
accepted). With CI=true a missing broker or database fails (the shared fixtures), never skips.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    ADMITTED,
    PYROS,
    STARTED,
    Api,
    Proc,
    accepted_request,
    base_env,
    bootstrap,
    dumps,
    event_time,
    first_accepted,
    free_port,
    fresh_tag,
    in_schedule,
    run_cli,
    wait_healthy,
)
from retime import retime

pytestmark = pytest.mark.integration

SERVICES = ("alerts", "routines", "scheduler")
# Tried in turn until one is accepted (RA 3.1 h, 12.7 h, 15.9 h: one is up at night in any season).
SVOM_CANDIDATES = [
    ["svom/sb26030408_eclairs-wakeup.xml"],
    ["svom/sb26042105_eclairs-wakeup.xml"],
    ["svom/sb26022802_eclairs-wakeup.xml"],
]
SWIFT_PACKET = "swift/bat_grb_pos_1125809.xml"  # RA 4.3 h: rejected (with a reason) in northern summer


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
    _, _, svom = first_accepted(api, SVOM_CANDIDATES)
    in_schedule(api, svom)

    _, swift = accepted_request(api, retime(SWIFT_PACKET, when=event_time(), tag=fresh_tag()))
    if swift["state"] != "rejected":  # rejected only with a reason for humans (checked)
        assert swift["state"] in ADMITTED, dumps(swift)
        in_schedule(api, swift)
