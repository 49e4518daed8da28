"""Acknowledged means durable (issue 10, row 1): 50 VOEvents posted to ``pyros up``, each answered
202, then ``kill -9`` right after the last answer; after a restart there are 50 alerts, none twice.

Before the bus journal, the in-process queue was memory only: 6 of 7 packets acknowledged this
way left no trace."""

from __future__ import annotations

import os
import signal
from collections import Counter

from e2e_support import ADMIN_PASSWORD, ADMIN_USER, PyrosUp, event_time, fresh_tag, poll, post_packet
from retime import retime

N = 50


def test_packets_acknowledged_before_a_kill_9_all_become_alerts_once(pyros_up: PyrosUp) -> None:
    api = pyros_up.api
    packets = [retime("swift/bat_grb_pos_1125809.xml", when=event_time(), tag=fresh_tag()) for _ in range(N)]
    for p in packets:
        ack = post_packet(api, p.xml)  # asserts 202
        assert ack["ivorn"] == p.ivorn
    popen = pyros_up.proc.popen
    assert popen is not None
    os.killpg(popen.pid, signal.SIGKILL)  # right after the last 202: no chance to finish anything
    popen.wait(30)
    pyros_up.proc.exit_codes.append(popen.returncode)
    assert popen.returncode == -signal.SIGKILL

    pyros_up.start()
    api.login(ADMIN_USER, ADMIN_PASSWORD)
    wanted = {f"swift-{p.event_key}" for p in packets}

    def ours() -> Counter[str] | None:
        r = api.get("/alerts", params={"mission": "Swift", "limit": 500})
        if r.status_code != 200:
            return None
        seen = Counter(item["id"] for item in r.json()["items"] if item["id"] in wanted)
        return seen if len(seen) == N else None

    seen = poll(f"GET /api/v1/alerts to list all {N} alerts after the restart", ours, report=lambda: api.last)
    assert set(seen) == wanted and set(seen.values()) == {1}
    for p in packets[:3]:  # each packet is recorded once, with its alert
        d = api.get(f"/alerts/swift-{p.event_key}").json()
        assert [x["ivorn"] for x in d["packets"]].count(p.ivorn) == 1
