"""Deployment artefacts: Helm chart, docker-compose file, Prometheus rules, Grafana dashboard.

The tools come from scripts/tools.sh (helm in .cache/bin, promtool and docker-compose from
Debian). A missing tool skips its tests, except in CI (CI=true) where it fails them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "pyros"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
COMPOSE = REPO / "docker-compose.yml"

# A version kubernetes-validate ships schemas for (offline), and what we tell helm.
KUBE_VERSION = "1.33.0"

SERVICES = [
    "alerts",
    "routines",
    "scheduler",
    "majordome",
    "monitoring",
    "observer",
    "analyzer",
    "device-gateway",
]
PROCESSES = [*SERVICES, "gateway"]

# Metrics of the runtime contract; histograms also expose _bucket, _sum and _count.
CONTRACT_METRICS = {
    "pyros_events_consumed_total",
    "pyros_events_produced_total",
    "pyros_handler_errors_total",
    "pyros_dlq_total",
    "pyros_service_state",
    "pyros_heartbeat_timestamp_seconds",
    "pyros_alert_packets_total",
    "pyros_alert_rejected_total",
}
CONTRACT_HISTOGRAMS = {"pyros_handler_seconds", "pyros_alert_intake_to_publish_seconds"}
# monitoring's (services/monitoring/pyros_monitoring/metrics.py) and the bus's consumer lag
MONITORING_METRICS = {
    "pyros_consumer_lag_messages",
    "pyros_device_status_events_total",
    "pyros_device_up",
    "pyros_device_slewing",
    "pyros_device_temperature_celsius",
    "pyros_weather_source_value",
    "pyros_weather_source_suspect",
    "pyros_weather_source_voting",
    "pyros_weather_vote",
    "pyros_conditions_safe",
    "pyros_conditions_changes_total",
    "pyros_schedule_sequences",
    "pyros_alerts_by_mission_total",
    "pyros_night_state",
    "pyros_current_sequence",
    "pyros_last_alert_timestamp_seconds",
}
MONITORING_HISTOGRAMS = {"pyros_alert_to_slew_seconds"}
KNOWN_METRICS = (
    CONTRACT_METRICS
    | MONITORING_METRICS
    | {
        f"{h}_{suffix}"
        for h in CONTRACT_HISTOGRAMS | MONITORING_HISTOGRAMS
        for suffix in ("bucket", "sum", "count")
    }
    | {"up"}
)

REQUIRED_ENV = {
    "PYROS_ENV",
    "PYROS_KAFKA_BOOTSTRAP",
    "PYROS_TELESCOPE_ID",
    "PYROS_SITE",
    "PYROS_LOG_LEVEL",
    "PYROS_TOPIC_PARTITIONS",
    "PYROS_TOPIC_REPLICATION",
    "PYROS_DATA_DIR",
}


# --- tools -------------------------------------------------------------------------------


def _tool(name: str, *candidates: Path) -> str:
    """Path of a tool, or skip (fail under CI=true) with how to get it."""
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} not found (looked in {', '.join(map(str, candidates))} and PATH): run scripts/tools.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def helm() -> str:
    return _tool("helm", REPO / ".cache" / "bin" / "helm")


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool", Path("/usr/bin/promtool"))


@pytest.fixture(scope="session")
def docker_compose() -> str:
    return _tool("docker-compose", Path("/usr/bin/docker-compose"))


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env, timeout=120, check=False)


def _template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(
        helm,
        "template",
        "pyros-test",
        str(CHART),
        "--namespace",
        "observatory",
        "--kube-version",
        KUBE_VERSION,
        *args,
    )


def _render(helm: str, *args: str) -> list[dict[str, Any]]:
    result = _template(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


# --- Helm ---------------------------------------------------------------------------------


def test_ci_values_files_exist() -> None:
    names = {p.name for p in CI_VALUES}
    assert {"default-values.yaml", "production-values.yaml"} <= names


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_helm_lint(helm: str, values: Path) -> None:
    result = _run(helm, "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_helm_template_is_valid_kubernetes(helm: str, values: Path) -> None:
    docs = _render(helm, "-f", str(values))
    assert docs
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            # A CRD: kubernetes-validate has no schema for it; check what the operator needs.
            assert doc["kind"] in ("ServiceMonitor", "PrometheusRule"), name
            if doc["kind"] == "PrometheusRule":
                rules = [r for g in doc["spec"]["groups"] for r in g["rules"]]
                assert rules and all(r["alert"] and r["expr"] for r in rules), name
                continue
            assert doc["spec"]["selector"]["matchLabels"], name
            assert doc["spec"]["endpoints"][0]["port"] == "http", name
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{values.name}: {name} is invalid for Kubernetes {KUBE_VERSION}: {exc.message}")
    assert {"Deployment", "Service", "ConfigMap"} <= kinds


def test_rules_and_dashboards_are_the_repository_files(helm: str) -> None:
    """prometheusRule / grafanaDashboards: the chart ships deploy/prometheus/rules and
    deploy/grafana/dashboards as they are (the chart's files/ links to them), the dashboards
    labelled and foldered for Grafana's sidecar; off by default."""
    plain = _render(helm)
    assert not _by_kind(plain, "PrometheusRule")
    assert not [n for n in _by_kind(plain, "ConfigMap") if "-dashboard-" in n]
    docs = _render(
        helm,
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "prometheusRule.labels.release=kube-prometheus-stack",
        "--set",
        "grafanaDashboards.enabled=true",
    )
    (rule,) = _by_kind(docs, "PrometheusRule").values()
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    files = sorted((PROMETHEUS / "rules").glob("*.rules.yml"))
    expected = [g for f in files for g in yaml.safe_load(f.read_text())["groups"]]
    assert rule["spec"]["groups"] == expected and len(files) >= 2
    maps = {n: m for n, m in _by_kind(docs, "ConfigMap").items() if "-dashboard-" in n}
    sources = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert len(maps) == len(sources) >= 6
    shipped = {}
    for m in maps.values():
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert m["metadata"]["annotations"] == {"grafana_folder": "PyROS"}
        ((key, body),) = m["data"].items()
        shipped[key] = body
    for src in sources:
        assert json.loads(shipped[src.name]) == json.loads(src.read_text()), src.name


def test_default_render_has_every_service(helm: str) -> None:
    docs = _render(helm)
    deployments = _by_kind(docs, "Deployment")
    services = _by_kind(docs, "Service")
    assert set(deployments) == {f"pyros-test-{p}" for p in PROCESSES}
    for process in PROCESSES:
        name = f"pyros-test-{process}"
        assert name in services, name
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["run", process]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = _env(container)
        port = "8000" if process == "gateway" else "8080"
        assert env["PYROS_HTTP_PORT"]["value"] == port
        assert container["ports"][0]["containerPort"] == int(port)
        assert env["PYROS_JWT_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "jwt-secret"
        assert "$(PYROS_DATABASE_PASSWORD)" in env["PYROS_DATABASE_URL"]["value"]
        assert container["envFrom"][0]["configMapRef"]["name"] == "pyros-test"
        assert pod["securityContext"]["runAsNonRoot"] is True
        # Service links would inject PYROS_<SVC>_PORT=tcp://... into the PYROS_ settings.
        assert pod["enableServiceLinks"] is False
        mounts = {m["name"] for m in container["volumeMounts"]}
        assert ("data" in mounts) == (process in {"observer", "analyzer"}), process

    # Hosts left empty are not set at all: "" would count as a host for the settings.
    alerts = _env(deployments["pyros-test-alerts"]["spec"]["template"]["spec"]["containers"][0])
    assert {"PYROS_GCN_CLIENT_ID", "PYROS_GCN_CLIENT_SECRET", "PYROS_VTP_PORT"} <= set(alerts)
    assert alerts["PYROS_GCN_CLIENT_ID"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "PYROS_VTP_HOST" not in alerts
    devices = _env(deployments["pyros-test-device-gateway"]["spec"]["template"]["spec"]["containers"][0])
    assert "PYROS_INDI_HOST" not in devices
    assert devices["PYROS_INDI_PORT"]["value"] == "7624"

    (config,) = _by_kind(docs, "ConfigMap").values()
    assert REQUIRED_ENV <= set(config["data"])
    assert config["data"]["PYROS_KAFKA_BOOTSTRAP"] == "pyros-test-kafka:9092"

    assert set(_by_kind(docs, "StatefulSet")) == {"pyros-test-kafka", "pyros-test-postgresql"}
    assert "pyros-test-data" in _by_kind(docs, "PersistentVolumeClaim")
    secret = _by_kind(docs, "Secret")["pyros-test"]
    assert len(secret["data"]["jwt-secret"]) > 40  # generated in development


def test_hosts_are_passed_when_given(helm: str) -> None:
    docs = _render(helm, "-f", str(CHART / "ci" / "production-values.yaml"))
    deployments = _by_kind(docs, "Deployment")
    alerts = _env(deployments["pyros-test-alerts"]["spec"]["template"]["spec"]["containers"][0])
    assert alerts["PYROS_VTP_HOST"]["value"] == "voevent.example.org"
    devices = _env(deployments["pyros-test-device-gateway"]["spec"]["template"]["spec"]["containers"][0])
    assert devices["PYROS_INDI_HOST"]["value"] == "indiserver.gft.svc"


def test_migration_job_is_a_hook(helm: str) -> None:
    (job,) = _by_kind(_render(helm), "Job").values()
    annotations = job["metadata"]["annotations"]
    # Bundled PostgreSQL: it does not exist before the install.
    assert annotations["helm.sh/hook"] == "post-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]

    external = _by_kind(_render(helm, "-f", str(CHART / "ci" / "production-values.yaml")), "Job")
    (job,) = external.values()
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    env = _env(job["spec"]["template"]["spec"]["containers"][0])
    # Inline settings: a pre-install hook cannot rely on the release's ConfigMap.
    assert REQUIRED_ENV <= set(env)
    assert env["PYROS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "pyros-database"


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("services.alerts.replicas=two", "replicas"),
        ("services.observer.replicas=2", "replicas"),
        ("services.alerts.replica=1", "replica"),
        ("config.env=staging", "env"),
        ("config.logLevel=verbose", "logLevel"),
        ("persistence.size=lots", "size"),
    ],
)
def test_schema_rejects_bad_values(helm: str, override: str, complaint: str) -> None:
    result = _template(helm, "--set", override)
    assert result.returncode != 0, f"--set {override} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_production_without_jwt_secret_fails_clearly(helm: str) -> None:
    result = _template(helm, "--set", "config.env=production")
    assert result.returncode != 0
    assert "secrets.jwtSecret" in result.stderr
    assert "required when config.env=production" in result.stderr

    prod = _template(
        helm, "-f", str(CHART / "ci" / "production-values.yaml"), "--set", "secrets.existingSecret="
    )
    assert prod.returncode != 0
    assert "required when config.env=production" in prod.stderr


def test_production_with_jwt_secret_renders(helm: str) -> None:
    key = "k" * 40
    docs = _render(helm, "--set", "config.env=production", "--set", f"secrets.jwtSecret={key}")
    secret = _by_kind(docs, "Secret")["pyros-test"]
    assert base64.b64decode(secret["data"]["jwt-secret"]).decode() == key
    # An existing Secret: the chart renders none of its own.
    docs = _render(helm, "-f", str(CHART / "ci" / "production-values.yaml"))
    assert "pyros-test" not in _by_kind(docs, "Secret")
    deployment = _by_kind(docs, "Deployment")["pyros-test-alerts"]
    env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
    assert env["PYROS_JWT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "pyros-secrets"


def test_external_services_need_addresses(helm: str) -> None:
    result = _template(helm, "--set", "kafka.enabled=false")
    assert result.returncode != 0
    assert "externalKafka.bootstrap is required" in result.stderr
    result = _template(helm, "--set", "postgresql.enabled=false")
    assert result.returncode != 0
    assert "externalDatabase.url or externalDatabase.existingSecret is required" in result.stderr


# --- Prometheus ---------------------------------------------------------------------------


def test_promtool_check_config(promtool: str) -> None:
    result = _run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules(promtool: str) -> None:
    rules = sorted((PROMETHEUS / "rules").glob("*.rules.yml"))
    assert rules
    result = _run(promtool, "check", "rules", *map(str, rules))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests(promtool: str) -> None:
    tests = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
    assert tests
    result = _run(promtool, "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_cover_key_alerts() -> None:
    tested: set[str] = set()
    for path in (PROMETHEUS / "tests").glob("*.test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            tested |= {
                case["alertname"] for case in test.get("alert_rule_test", []) if case.get("exp_alerts")
            }
    assert {"PyrosServiceInFault", "PyrosHeartbeatStale", "PyrosDLQGrowing"} <= tested


def _metric_names(expr: str) -> set[str]:
    """pyros_* metric names in a PromQL expression (label names and values left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {n for n in names if n.startswith("pyros_") or n == "up"}


def _rules() -> Iterator[dict[str, Any]]:
    for path in sorted((PROMETHEUS / "rules").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def test_rules_use_contract_metrics() -> None:
    rules = list(_rules())
    assert {"PyrosServiceInFault", "PyrosHeartbeatStale", "PyrosDLQGrowing"} <= {r["alert"] for r in rules}
    for rule in rules:
        names = _metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric in {rule['expr']!r}"
        assert names <= KNOWN_METRICS, f"{rule['alert']}: unknown metrics {names - KNOWN_METRICS}"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]


def test_metric_name_extraction() -> None:
    expr = 'sum by (service, pyros_x) (rate(pyros_dlq_total{topic="pyros_fake"}[5m])) / up'
    assert _metric_names(expr) == {"pyros_dlq_total", "up"}


# --- docker-compose -----------------------------------------------------------------------


def _compose_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYROS_", "POSTGRES_", "GRAFANA_"))}
    env.update(extra)
    return env


def test_docker_compose_config(docker_compose: str) -> None:
    env = _compose_env(PYROS_JWT_SECRET="test-only-secret")
    result = _run(docker_compose, "-f", str(COMPOSE), "config", "-q", env=env)
    assert result.returncode == 0, result.stderr

    rendered = _run(docker_compose, "-f", str(COMPOSE), "config", env=env)
    assert rendered.returncode == 0, rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    assert {"kafka", "postgres", "migrate", "prometheus", "grafana", *PROCESSES} <= set(services)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for process in PROCESSES:
        svc = services[process]
        assert svc["command"] == ["run", process]
        assert any("/readyz" in part for part in svc["healthcheck"]["test"]), process
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["environment"]["PYROS_JWT_SECRET"] == "test-only-secret"
        assert REQUIRED_ENV <= set(svc["environment"])
    assert services["alerts"]["environment"]["PYROS_VTP_PORT"] == "8099"
    # Unset on the host: null, i.e. absent in the container (not an empty host name).
    assert services["device-gateway"]["environment"]["PYROS_INDI_HOST"] is None
    assert services["alerts"]["environment"]["PYROS_VTP_HOST"] is None
    assert services["alerts"]["environment"]["PYROS_GCN_CLIENT_SECRET"] is None


def test_docker_compose_requires_jwt_secret(docker_compose: str) -> None:
    result = _run(docker_compose, "-f", str(COMPOSE), "config", "-q", env=_compose_env())
    assert result.returncode != 0
    assert "set PYROS_JWT_SECRET" in result.stderr


# --- Grafana ------------------------------------------------------------------------------


def _dashboards() -> list[Path]:
    paths = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert paths
    return paths


def test_grafana_dashboards_are_valid_json() -> None:
    for path in _dashboards():
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"


def test_grafana_panels_use_contract_metrics() -> None:
    seen: set[str] = set()
    for path in _dashboards():
        for panel in json.loads(path.read_text())["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["targets"], f"{path.name}: panel {panel['title']!r} has no query"
            for target in panel["targets"]:
                names = _metric_names(target["expr"])
                assert names, f"{panel['title']!r}: no metric in {target['expr']!r}"
                assert names <= KNOWN_METRICS, f"{panel['title']!r}: unknown metrics {names - KNOWN_METRICS}"
                seen |= names
    # Every metric of the contract is on a panel.
    assert CONTRACT_METRICS <= seen
    assert all(any(n.startswith(h) for n in seen) for h in CONTRACT_HISTOGRAMS)


def test_grafana_provisioning_matches_dashboard() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "pyros.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for path in _dashboards():
        variables = {v["name"]: v for v in json.loads(path.read_text())["templating"]["list"]}
        assert variables["datasource"]["current"]["value"] == source["uid"]


# --- tools.sh -----------------------------------------------------------------------------


def test_tools_script_is_valid_bash() -> None:
    result = _run("bash", "-n", str(REPO / "scripts" / "tools.sh"))
    assert result.returncode == 0, result.stderr
