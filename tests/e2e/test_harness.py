"""The end-to-end harness itself: start, health, login, packet posting, CLI, restart.

These only check what the harness relies on, so that a failure of ``test_grb_flow.py`` points at
the system, not at the harness.
"""

from __future__ import annotations

from e2e_support import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    PyrosUp,
    event_time,
    find_alert,
    fresh_tag,
    poll,
    post_packet,
    run_cli,
)
from retime import retime


def test_up_healthy_and_logged_in_as_admin(pyros_up: PyrosUp) -> None:
    api = pyros_up.api
    health = api.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok", api.last
    me = api.post("/login/test-token")
    assert me.status_code == 200 and me.json()["username"] == ADMIN_USER, api.last
    for code in ("GRB", "E2E"):
        assert api.get(f"/programs/{code}").status_code == 200, api.last


def _post_and_find(up: PyrosUp) -> dict[str, object]:
    packet = retime("swift/bat_grb_pos_1125809.xml", when=event_time(), tag=fresh_tag())
    ack = post_packet(up.api, packet.xml)
    assert ack["ivorn"] == packet.ivorn
    alert = poll(
        f"GET /api/v1/alerts to list the alert of {packet.ivorn}",
        lambda: find_alert(up.api, ivorn=packet.ivorn, mission="Swift"),
        report=lambda: up.api.last,
    )
    assert alert["event_key"] == packet.event_key
    assert abs(alert["ra_deg"] - 64.7373) < 1e-6 and abs(alert["dec_deg"] - 13.3517) < 1e-6
    return alert


def test_a_retimed_packet_is_received_as_an_alert(pyros_up: PyrosUp) -> None:
    _post_and_find(pyros_up)


def test_cli_login_and_request_list_run(pyros_up: PyrosUp) -> None:
    env = pyros_up.cli_env()
    run_cli(
        ["login", "--url", pyros_up.url, "--user", ADMIN_USER, "--password-stdin"],
        env=env,
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert (pyros_up.home / "pyros" / "token.json").is_file()
    out = run_cli(["request", "list"], env=env).stdout
    assert out.strip().splitlines()[-1].startswith("("), out


def test_restart_on_the_same_data_directory(pyros_up: PyrosUp) -> None:
    alert = _post_and_find(pyros_up)
    pyros_up.restart()  # SIGINT, wait, start again, wait for health, log in again
    assert pyros_up.proc.exit_codes[-1] == 0, pyros_up.proc.tail()
    got = pyros_up.api.get(f"/alerts/{alert['id']}")
    assert got.status_code == 200, pyros_up.api.last
