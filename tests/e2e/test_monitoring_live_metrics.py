"""Every metric the Grafana dashboards and the alert rules use is one a live ``pyros up`` exports,
and monitoring's status document is served: the check the dashboards' metrics once failed."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
from e2e_support import PyrosUp, poll

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))
WAIT_S = 45.0  # devices and weather sources report within seconds of the start


def metric_names(expr: str) -> set[str]:
    """pyros_* metric names in a PromQL expression (label names and values left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return {n for n in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr) if n.startswith("pyros_")}


def used_by_dashboards() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                for name in metric_names(target["expr"]):
                    out.setdefault(name, set()).add(f"{path.name}: {panel['title']}")
    return out


def used_by_rules() -> dict[str, set[str]]:
    import yaml

    out: dict[str, set[str]] = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for name in metric_names(rule["expr"]):
                    out.setdefault(name, set()).add(f"{path.name}: {rule['alert']}")
    return out


def exported(url: str) -> set[str]:
    """Names with at least one sample in /metrics (a declared but empty family does not count)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def test_metric_name_extraction() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, pyros_x) (rate(pyros_a_bucket{q="pyros_b"}[5m]))) / pyros_c'
    assert metric_names(expr) == {"pyros_a_bucket", "pyros_c"}


def test_every_dashboard_and_rule_metric_is_exported_by_a_live_pyros_up(pyros_up: PyrosUp) -> None:
    used = used_by_dashboards()
    for name, where in used_by_rules().items():
        used.setdefault(name, set()).update(where)
    assert len(DASHBOARDS) >= 6 and len(used) >= 25, sorted(used)
    deadline = time.monotonic() + WAIT_S
    while True:
        missing = {n: w for n, w in used.items() if n not in exported(pyros_up.url)}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert not missing, "used but not exported by pyros up:\n" + "\n".join(
        f"  {n}  ({'; '.join(sorted(w))})" for n, w in sorted(missing.items())
    )


def test_site_status_is_one_document(pyros_up: PyrosUp) -> None:
    def ready() -> dict[str, object] | None:
        r = pyros_up.api.get("/site/status")
        doc: dict[str, object] = r.json() if r.status_code == 200 else {}
        return doc if doc.get("conditions") and doc.get("devices") else None

    doc = poll("GET /api/v1/site/status with conditions and devices", ready, report=lambda: pyros_up.api.last)
    assert {
        "night",
        "conditions",
        "devices",
        "health",
        "current_sequence",
        "next_sequence",
        "last_alert",
    } <= set(doc)
    conditions = doc["conditions"]
    assert isinstance(conditions, dict) and {s["source"] for s in conditions["sources"]} >= {"plc", "weather"}
