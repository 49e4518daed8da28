"""An alert reaches the telescope with every service in its own process, on real Kafka and
PostgreSQL: ``pyros run alerts | routines | scheduler | majordome | observer | device-gateway |
gateway``. The site is San Pedro Mártir's latitude at the longitude where it is local midnight
now, so that the night runs whatever the time of the test. One SVOM packet, re-timed to now, must
become an accepted request, majordome must dispatch it, the observer must send the slew, and
device-gateway must execute it on its simulated mount (its reply carries the command id).

This is the night path of issue 11 and row 14 of issue 10 (routines, the scheduler and
device-gateway on the real servers), as a user runs it in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    Api,
    dumps,
    first_accepted,
    poll,
    services_on_kafka,
)

pytestmark = pytest.mark.integration

SERVICES = ("alerts", "routines", "scheduler", "majordome", "observer", "device-gateway")
SVOM_CANDIDATES = [  # RA 3.1 h, 12.7 h, 15.9 h: one is up at local midnight in any season
    ["svom/sb26030408_eclairs-wakeup.xml"],
    ["svom/sb26042105_eclairs-wakeup.xml"],
    ["svom/sb26022802_eclairs-wakeup.xml"],
]


def midnight_site(path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    lon = ((0.0 - (now.hour + now.minute / 60)) * 15.0 + 180.0) % 360.0 - 180.0
    path.write_text(
        f'[site]\nid = "e2e-midnight"\nlat_deg = 31.0439\nlon_deg = {lon:.4f}\nheight_m = 2800.0\n'
        'night_sun_altitude_deg = -18.0\n\n[[telescopes]]\nid = "gft"\n'
    )


@pytest.fixture
def night_on_kafka(
    kafka_bootstrap: str, topic_prefix: str, pg_url: str, tmp_path: Path
) -> Iterator[tuple[Api, str]]:
    site = tmp_path / "site.toml"
    midnight_site(site)
    with services_on_kafka(
        SERVICES,
        kafka=kafka_bootstrap,
        prefix=topic_prefix,
        pg_url=pg_url,
        root=tmp_path,
        PYROS_SITE=str(site),
    ) as (api, _env):
        yield api, topic_prefix


def read_topics(bootstrap: str, topics: list[str]) -> list[tuple[str, dict[str, Any]]]:
    from aiokafka import AIOKafkaConsumer

    async def run() -> list[tuple[str, dict[str, Any]]]:
        c = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await c.start()
        out: list[tuple[str, dict[str, Any]]] = []
        try:
            while True:
                batch = await c.getmany(timeout_ms=1500)
                if not batch:
                    return out
                for records in batch.values():
                    out.extend((r.topic, json.loads(r.value)) for r in records if r.value is not None)
        finally:
            await c.stop()

    return asyncio.run(run())


def test_an_alert_becomes_a_slew_that_device_gateway_executes(
    night_on_kafka: tuple[Api, str], kafka_bootstrap: str
) -> None:
    api, prefix = night_on_kafka
    poll(
        "GET /api/v1/night to say the night runs (majordome on pyros.system)",
        lambda: True if api.get("/night").json().get("state") == "running" else None,
        report=lambda: api.last,
    )
    _, _, req = first_accepted(api, SVOM_CANDIDATES)
    document = api.get(f"/requests/{req['id']}/export").json()
    target = document["sequences"][0]["target"]
    commands, status = prefix + "pyros.device.commands", prefix + "pyros.device.status"

    def executed() -> tuple[dict[str, Any], dict[str, Any]] | None:
        seen = read_topics(kafka_bootstrap, [commands, status])
        slews = [
            e
            for t, e in seen
            if t == commands
            and e["command"] == "slew"
            and e["producer"] == "observer"
            and abs(e["params"]["ra_deg"] - target["ra_deg"]) < 1e-6
            and abs(e["params"]["dec_deg"] - target["dec_deg"]) < 1e-6
        ]
        for slew in slews:
            replies = [
                e
                for t, e in seen
                if t == status
                and e.get("command_id") == slew["command_id"]
                and e["producer"] == "device-gateway"
            ]
            if replies:
                return slew, replies[0]
        return None

    slew, reply = poll(f"a slew to {target} executed by device-gateway", executed, report=lambda: dumps(req))
    assert reply["device_id"] == "telescope" and reply["ok"], (slew, reply)
    assert reply["state"] in ("slewing", "tracking", "idle"), reply
    night = api.get("/night").json()
    assert night["state"] == "running", night
