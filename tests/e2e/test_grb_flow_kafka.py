"""The main GRB flow with each service in its own process, on real Kafka and PostgreSQL.

``pyros run alerts | routines | scheduler | gateway`` (production mode), a per-test topic prefix
and a fresh PostgreSQL database (tests/conftest.py), migrated with ``pyros db upgrade``. One SVOM
and one Swift packet, re-timed to now, must each become an accepted request that the schedule
names (the Swift one may instead, as in test_grb_flow.py, be rejected with a reason for humans when
its fixed position is not up tonight; the SVOM one is picked among events spread in RA and must be
accepted). With CI=true a missing broker or database fails (the shared fixtures), never skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    ADMITTED,
    Api,
    accepted_request,
    dumps,
    event_time,
    first_accepted,
    fresh_tag,
    in_schedule,
    services_on_kafka,
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
    with services_on_kafka(
        SERVICES, kafka=kafka_bootstrap, prefix=topic_prefix, pg_url=pg_url, root=tmp_path
    ) as running:
        yield running


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
