"""The monitoring dashboards and alert rules as files: generated from their code, the panels the
operators need, every new alert rule covered by a promtool unit test. (The check against a live
``/metrics`` is tests/e2e/test_monitoring_dashboards.py; promtool itself runs in test_deploy.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
PROMETHEUS = REPO / "deploy" / "prometheus"


def test_dashboards_are_what_their_code_writes() -> None:
    r = subprocess.run(
        [sys.executable, str(GRAFANA / "build_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _titles(uid: str) -> set[str]:
    doc = json.loads((GRAFANA / "dashboards" / f"{uid}.json").read_text())
    assert doc["uid"] == uid
    return {p["title"] for p in doc["panels"]}


def test_the_five_dashboards_show_what_the_operators_need() -> None:
    assert {"Night state", "Safe to observe", "Current sequence", "Last alert"} <= _titles(
        "pyros-observatory"
    )
    assert {"Up / down", "Slewing", "Temperatures"} <= _titles("pyros-devices")
    assert {"Vote per quantity", "Rain", "Clouds (sky - ambient)", "Suspect / voting"} <= _titles(
        "pyros-weather"
    )
    assert {"Alerts by mission", "Alert to slew"} <= _titles("pyros-alerts")
    assert {"Scheduled", "Unscheduled by reason"} <= _titles("pyros-scheduler")


def test_the_operator_alerts_exist_and_each_is_unit_tested() -> None:
    wanted = {"PyrosDeviceDown", "PyrosWeatherSourceSuspect", "PyrosConsumerLag", "PyrosServiceNotReady"}
    rules = {
        r["alert"]
        for path in (PROMETHEUS / "rules").glob("*.rules.yml")
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
    }
    assert wanted <= rules
    tested = {
        case["alertname"]
        for path in (PROMETHEUS / "tests").glob("*.test.yml")
        for t in yaml.safe_load(path.read_text())["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert wanted <= tested, wanted - tested
