"""The Grafana dashboards as code: ``python deploy/grafana/build_dashboards.py`` writes
``dashboards/pyros-{observatory,devices,weather,alerts,scheduler}.json``.

Every expression uses only metrics a running PyROS exports (tests/e2e/test_monitoring_dashboards.py
checks them against a live ``pyros up``); tests/deploy checks the files are what this script writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_VAR = {
    "name": "datasource",
    "type": "datasource",
    "query": "prometheus",
    "label": "Data source",
    "current": {"text": "Prometheus", "value": "pyros-prometheus"},
    "hide": 0,
}


def panel(
    kind: str,
    title: str,
    description: str,
    *exprs: tuple[str, str],
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    **options: Any,
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": h, "w": w},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": options,
    }


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24}, "panels": []}


def dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    x = y = 0
    line_h = 0
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > 24:
            x, y = 0, y + line_h
            line_h = 0
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x, line_h = x + w, max(line_h, h)
        if p["type"] == "row":
            x, y, line_h = 0, y + 1, 0
    return {
        "uid": uid,
        "title": title,
        "tags": ["pyros"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-12h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": [DATASOURCE_VAR]},
        "panels": panels,
    }


STATE_VALUE = {
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    "colorMode": "background",
}

DASHBOARDS = {
    "pyros-observatory": dashboard(
        "pyros-observatory",
        "PyROS observatory",
        [
            row("Now"),
            panel(
                "stat",
                "Night state",
                "majordome's night state (pyros.system).",
                ("max by (state) (pyros_night_state) == 1", "{{state}}"),
                w=6,
                **STATE_VALUE,
            ),
            panel(
                "stat",
                "Safe to observe",
                "monitoring's verdict on pyros.conditions (1 safe, 0 unsafe).",
                ("max by (site) (pyros_conditions_safe)", "{{site}}"),
                w=6,
                **STATE_VALUE,
            ),
            panel(
                "stat",
                "Current sequence",
                "The sequence majordome dispatched (none: no series at 1).",
                ("max by (sequence) (pyros_current_sequence) == 1", "{{sequence}}"),
                w=6,
                **STATE_VALUE,
            ),
            panel(
                "stat",
                "Last alert",
                "When the last alert change arrived on pyros.alerts.",
                ("max(pyros_last_alert_timestamp_seconds) * 1000", "last alert"),
                unit="dateTimeFromNow",
                w=6,
            ),
            row("Tonight"),
            panel(
                "state-timeline",
                "Night state over time",
                "1 for the current state.",
                ("max by (state) (pyros_night_state) == 1", "{{state}}"),
                w=12,
            ),
            panel(
                "timeseries",
                "Safe over time",
                "1 safe, 0 unsafe.",
                ("max by (site) (pyros_conditions_safe)", "{{site}}"),
                w=12,
            ),
            panel(
                "stat",
                "Blocking devices down",
                "Devices not UP (down or silent).",
                ("count(max by (device) (pyros_device_up) == 0) or vector(0)", "down"),
                w=8,
            ),
            panel(
                "stat",
                "Suspect weather sources",
                "Sources that no longer vote.",
                ("sum(pyros_weather_source_suspect)", "suspect"),
                w=8,
            ),
            panel(
                "stat",
                "Sequences in the plan",
                "Latest schedule version.",
                ('sum(pyros_schedule_sequences{state="scheduled"})', "scheduled"),
                w=8,
            ),
        ],
    ),
    "pyros-devices": dashboard(
        "pyros-devices",
        "PyROS devices",
        [
            row("Health"),
            panel(
                "state-timeline",
                "Up / down",
                "1 UP (ok and a recent status), 0 down or silent.",
                ("max by (device) (pyros_device_up)", "{{device}}"),
                w=24,
            ),
            panel(
                "timeseries",
                "Slewing",
                "1 while a device reports slewing.",
                ("max by (device) (pyros_device_slewing)", "{{device}}"),
                w=12,
            ),
            panel(
                "timeseries",
                "Temperatures",
                "Sensor temperatures (CCD, mount, ...).",
                ("max by (device) (pyros_device_temperature_celsius)", "{{device}}"),
                unit="celsius",
                w=12,
            ),
            panel(
                "timeseries",
                "Status events / s",
                "Device status events monitoring receives.",
                ("sum(rate(pyros_device_status_events_total[$__rate_interval]))", "status / s"),
                unit="ops",
                w=24,
            ),
        ],
    ),
    "pyros-weather": dashboard(
        "pyros-weather",
        "PyROS weather",
        [
            row("The vote"),
            panel(
                "stat",
                "Safe",
                "The synthesised verdict.",
                ("max by (site) (pyros_conditions_safe)", "{{site}}"),
                w=6,
                **STATE_VALUE,
            ),
            panel(
                "table",
                "Vote per quantity",
                "Weighted median (rain: majority) of the voting sources.",
                ("max by (quantity) (pyros_weather_vote)", "{{quantity}}"),
                w=18,
            ),
            row("Every source"),
            panel(
                "timeseries",
                "Clouds (sky - ambient)",
                "Per source; above -15 °C is overcast.",
                ('max by (source) (pyros_weather_source_value{quantity="clouds"})', "{{source}}"),
                ('max(pyros_weather_vote{quantity="clouds"})', "vote"),
                unit="celsius",
            ),
            panel(
                "timeseries",
                "Rain",
                "1 wet, per source, and the vote.",
                ('max by (source) (pyros_weather_source_value{quantity="rain"})', "{{source}}"),
                ('max(pyros_weather_vote{quantity="rain"})', "vote"),
            ),
            panel(
                "timeseries",
                "Wind",
                "Per source, and the vote.",
                ('max by (source) (pyros_weather_source_value{quantity="wind"})', "{{source}}"),
                ('max(pyros_weather_vote{quantity="wind"})', "vote"),
                unit="velocityms",
            ),
            panel(
                "timeseries",
                "Humidity",
                "Per source, and the vote.",
                ('max by (source) (pyros_weather_source_value{quantity="humidity"})', "{{source}}"),
                ('max(pyros_weather_vote{quantity="humidity"})', "vote"),
                unit="percent",
            ),
            panel(
                "timeseries",
                "Dew point margin",
                "Ambient - dew point, per source.",
                ('max by (source) (pyros_weather_source_value{quantity="dew_point"})', "{{source}}"),
                unit="celsius",
            ),
            panel(
                "state-timeline",
                "Suspect / voting",
                "Suspect sources no longer vote.",
                ("max by (source) (pyros_weather_source_suspect)", "suspect {{source}}"),
                ("max by (source) (pyros_weather_source_voting)", "voting {{source}}"),
            ),
            panel(
                "timeseries",
                "Verdicts published / h",
                "ConditionsChanged events on pyros.conditions.",
                ("sum by (site) (increase(pyros_conditions_changes_total[1h]))", "{{site}}"),
                w=24,
            ),
        ],
    ),
    "pyros-alerts": dashboard(
        "pyros-alerts",
        "PyROS alerts and latency",
        [
            row("Alerts"),
            panel(
                "timeseries",
                "Alerts by mission",
                "Alert changes on pyros.alerts, per mission and action.",
                (
                    "sum by (mission, action) (increase(pyros_alerts_by_mission_total[$__rate_interval]))",
                    "{{mission}} {{action}}",
                ),
            ),
            panel(
                "timeseries",
                "Packets by intake and mission",
                "VOEvent packets received.",
                (
                    "sum by (intake, mission) (increase(pyros_alert_packets_total[$__rate_interval]))",
                    "{{intake}} {{mission}}",
                ),
            ),
            row("Latency"),
            panel(
                "timeseries",
                "Alert to slew",
                "From the alert on pyros.alerts to the telescope slewing for it.",
                (
                    "histogram_quantile(0.5, sum by (le) (rate(pyros_alert_to_slew_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) (rate(pyros_alert_to_slew_seconds_bucket[$__rate_interval])))",
                    "p95",
                ),
                unit="s",
            ),
            panel(
                "timeseries",
                "Intake to publish",
                "From a packet received to its alert published.",
                (
                    "histogram_quantile(0.95, sum by (le) (rate(pyros_alert_intake_to_publish_seconds_bucket[$__rate_interval])))",
                    "p95",
                ),
                unit="s",
            ),
            panel(
                "stat",
                "Alerts slewed to",
                "Alerts whose request got the telescope slewing.",
                ("sum(pyros_alert_to_slew_seconds_count)", "alerts"),
                w=12,
            ),
            panel(
                "timeseries",
                "Consumer lag",
                "Messages behind, per service and topic.",
                ("max by (service, topic) (pyros_consumer_lag_messages)", "{{service}} {{topic}}"),
                w=12,
            ),
        ],
    ),
    "pyros-scheduler": dashboard(
        "pyros-scheduler",
        "PyROS scheduler",
        [
            row("The plan"),
            panel(
                "stat",
                "Scheduled",
                "Sequences in the latest schedule.",
                ('sum by (telescope) (pyros_schedule_sequences{state="scheduled"})', "{{telescope}}"),
                w=8,
            ),
            panel(
                "stat",
                "Unscheduled",
                "Sequences left out.",
                ('sum by (telescope) (pyros_schedule_sequences{state="unscheduled"})', "{{telescope}}"),
                w=8,
            ),
            panel(
                "bargauge",
                "Unscheduled by reason",
                "Why sequences wait.",
                ('sum by (reason) (pyros_schedule_sequences{state="unscheduled"})', "{{reason}}"),
                w=8,
            ),
            panel(
                "timeseries",
                "Scheduled over time",
                "Per telescope.",
                ("sum by (telescope, state) (pyros_schedule_sequences)", "{{telescope}} {{state}}"),
                w=24,
            ),
        ],
    ),
}


def main(check: bool = False) -> int:
    stale = []
    for name, doc in DASHBOARDS.items():
        path = OUT / f"{name}.json"
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
            continue
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    if stale:
        print("out of date (run python deploy/grafana/build_dashboards.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))
