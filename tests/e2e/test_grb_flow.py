"""A GRB packet posted to ``pyros up`` becomes an accepted request that the schedule names.

Everything goes through HTTP and the ``pyros`` command line against a real ``pyros up``.
The packets are corpus packets re-timed to a burst a few minutes ago (``retime.py``); their sky
positions are fixed, so a sequence may be either scheduled or unscheduled with a reason.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from e2e_support import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    ADMITTED,
    PyrosUp,
    dumps,
    first_accepted,
    in_schedule,
    last_answer,
    poll,
    post_packet,
    routine_document,
    run_cli,
    target_up_tonight,
    try_candidates,
    wait_in_schedule,
    wait_request_decided,
)
from retime import manifest_row

# Observation packets with a position, per GRB mission of the corpus (MANIFEST.tsv), tried in
# turn until routines accepts one; the others must be rejected with a reason for humans (not
# observable tonight). SVOM spans RA 3.1 h, 12.7 h, 15.9 h; Fermi 2.8 h, 12.9 h.
MAIN_CANDIDATES = {
    "SVOM": [
        "svom/sb26030408_eclairs-wakeup.xml",
        "svom/sb26042105_eclairs-wakeup.xml",
        "svom/sb26022802_eclairs-wakeup.xml",
    ],
    "Swift": ["swift/bat_grb_pos_1125809.xml"],
    "INTEGRAL": ["integral/wakeup_pos_010042.xml"],
    "Fermi": ["fermi/lat_793795104_initial_pos.xml", "fermi/gbm_798437606_gnd_pos.xml"],
}
# A first position, then a better (smaller error) one of the same event; tried in turn until one
# is accepted (RA 4.3 h, 15.9 h, 12.7 h, 18.3 h: one of them is up at night in any season).
REFINEMENTS = [
    ("swift/bat_grb_pos_1125809.xml", "swift/xrt_pos_1125809.xml"),
    ("svom/sb26022802_eclairs-wakeup.xml", "svom/sb26022802_mxt-initial.xml"),
    ("svom/sb26042105_eclairs-wakeup.xml", "svom/sb26042105_mxt-initial.xml"),
    ("integral/wakeup_pos_010042.xml", "integral/refined_pos_010042.xml"),
]

# Alert requests accepted by earlier tests of this module, for the restart test.
ACCEPTED: list[dict[str, Any]] = []


@pytest.mark.parametrize("mission", list(MAIN_CANDIDATES))
def test_grb_packet_becomes_an_accepted_request_in_the_schedule(pyros_up: PyrosUp, mission: str) -> None:
    (packet,), _, req, _ = try_candidates(pyros_up.api, [[p] for p in MAIN_CANDIDATES[mission]])
    assert packet.mission == mission and packet.ra_deg is not None
    if req["state"] == "rejected":
        return  # every candidate rejected with a reason for humans (checked): nothing to schedule
    assert req["state"] in ADMITTED, dumps(req)
    in_schedule(pyros_up.api, req)
    ACCEPTED.append(req)


def test_better_position_revises_the_request_and_the_schedule(pyros_up: PyrosUp) -> None:
    (first, better), alert, req = first_accepted(pyros_up.api, REFINEMENTS)
    assert first.event_key == better.event_key
    better_path = better.path
    before = in_schedule(pyros_up.api, req)

    ack = post_packet(pyros_up.api, better.xml)
    assert ack.get("ivorn") == better.ivorn, dumps(ack)
    row = manifest_row(better_path)
    ra, dec = float(row["ra_deg"]), float(row["dec_deg"])
    api = pyros_up.api

    def refined() -> dict[str, Any] | None:
        a = api.get(f"/alerts/{alert['id']}")  # the alert's current request (a revision may renew it)
        request_id = a.json().get("request_id") if a.status_code == 200 else None
        request_id = request_id or req["id"]
        r = api.get(f"/requests/{request_id}")
        if r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        seqs = body.get("sequences") or []
        on_target = seqs and all(
            abs(s["ra_deg"] - ra) < 1e-4 and abs(s["dec_deg"] - dec) < 1e-4 for s in seqs
        )
        return body if on_target and body.get("state") in ADMITTED else None

    revised = poll(
        f"the request's sequences to point at the refined position ({ra}, {dec}) and be accepted",
        refined,
        report=last_answer(api),
    )
    after = in_schedule(pyros_up.api, revised, newer_than=int(before["version"]))
    assert int(after["version"]) > int(before["version"])
    # Where the schedule gives a placed sequence's coordinates, they are the refined ones.
    names = {s["name"] for s in revised["sequences"]} | {s["id"] for s in revised["sequences"]}
    for item in (after.get("schedule") or {}).get("scheduled") or []:
        target = item.get("target")
        coords = target if isinstance(target, dict) else item
        if item.get("sequence") in names and "ra_deg" in coords:
            assert abs(coords["ra_deg"] - ra) < 1e-4 and abs(coords["dec_deg"] - dec) < 1e-4, dumps(item)
    ACCEPTED.append(revised)


def test_routine_request_placed_in_the_plan_reads_scheduled(pyros_up: PyrosUp) -> None:
    api = pyros_up.api
    eph = api.get("/ephemerides")
    assert eph.status_code == 200, api.last
    ra, dec = target_up_tonight(eph.json(), datetime.now(UTC))
    doc = routine_document(f"e2e-routine-{uuid.uuid4().hex[:8]}", ra, dec)

    r = api.post("/requests", json=doc)
    assert r.status_code == 201, api.last
    req_id = r.json()["id"]
    req = wait_request_decided(api, req_id, report=last_answer(api))
    assert req["state"] in ADMITTED, f"an observable routine request: {dumps(req)}"

    sch, where = wait_in_schedule(api, req, report=last_answer(api))
    placed = [name for name, (state, _) in where.items() if state == "scheduled"]
    assert placed, (
        f"the zenith target at RA {ra} Dec {dec} should be placed tonight; schedule says {where} "
        f"(version {sch.get('version')})"
    )

    def reads_scheduled() -> dict[str, Any] | None:
        got = api.get(f"/requests/{req_id}")
        if got.status_code != 200:
            return None
        body: dict[str, Any] = got.json()
        states = {s["name"]: s["state"] for s in body["sequences"]}
        return body if all(states.get(n) == "scheduled" for n in placed) else None

    poll(
        f"GET /api/v1/requests/{req_id} to show the sequences {placed} as scheduled",
        reads_scheduled,
        report=last_answer(api),
    )


def test_cli_lists_the_alert_request(pyros_up: PyrosUp) -> None:
    _, _, req, _ = try_candidates(pyros_up.api, [[p] for p in MAIN_CANDIDATES["Swift"]])
    env = pyros_up.cli_env()
    out = run_cli(
        ["login", "--url", pyros_up.url, "--user", ADMIN_USER, "--password-stdin"],
        env=env,
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert "logged in" in out.stdout, out.stdout
    listing = run_cli(["request", "list", "--limit", "200"], env=env).stdout
    line = next((ln for ln in listing.splitlines() if ln.startswith(req["id"])), None)
    assert line is not None, f"`pyros request list` does not show {req['id']}:\n{listing}"
    assert req["state"] in line, line
    shown = run_cli(["request", "show", req["id"]], env=env).stdout
    assert req["id"] in shown and "state" in shown, shown
    plan = run_cli(["plan"], env=env).stdout
    assert "version" in plan and req["id"] in plan, plan  # scheduled or "not planned" with a reason


def test_restart_keeps_the_accepted_alert_requests_in_the_schedule(pyros_up: PyrosUp) -> None:
    # Make sure there is at least one, even when this test runs alone.
    _, _, req = first_accepted(pyros_up.api, [[p] for ps in MAIN_CANDIDATES.values() for p in ps])
    in_schedule(pyros_up.api, req)
    accepted = [*ACCEPTED, req]

    pyros_up.restart()

    for before in accepted:
        got = pyros_up.api.get(f"/requests/{before['id']}")
        assert got.status_code == 200, pyros_up.api.last
        assert got.json()["state"] in ADMITTED, json.dumps(got.json())[:2000]
        in_schedule(pyros_up.api, got.json())
