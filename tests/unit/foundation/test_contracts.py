import json
import os
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from pyros_common.contracts import MODEL_BY_TOPIC, TOPICS, AlertChanged, DeviceCommand, Event
from pyros_common.contracts.asyncapi import asyncapi_yaml, build_asyncapi

ROOT = Path(__file__).resolve().parents[3]
ARCH = ROOT.parent / "shared" / "docs" / "ARCHITECTURE.md"
ARCH_TOPICS = {
    "pyros.voevents.raw",
    "pyros.alerts",
    "pyros.requests",
    "pyros.schedule",
    "pyros.system",
    "pyros.device.commands",
    "pyros.device.status",
    "pyros.conditions",
    "pyros.observations",
    "pyros.images",
    "pyros.analysis",
}
ENVELOPE = {"schema_version", "event_id", "sent_at", "producer", "correlation_id", "telescope_id"}


def test_architecture_topics_match_our_list() -> None:
    if not ARCH.exists():
        pytest.skip("shared/docs/ARCHITECTURE.md absent")
    listed = set(re.findall(r"^\| (pyros\.[a-z.]+) \|", ARCH.read_text(), flags=re.M))
    assert listed == ARCH_TOPICS


def test_every_topic_has_one_model_with_the_envelope() -> None:
    assert ARCH_TOPICS <= set(TOPICS)
    for name, model in MODEL_BY_TOPIC.items():
        assert model.topic == name
        assert ENVELOPE <= set(model.model_fields), name


def test_every_field_is_described() -> None:
    for model in MODEL_BY_TOPIC.values():
        for field_name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{field_name} has no description"


def test_units_are_stated_for_physical_quantities() -> None:
    for model in MODEL_BY_TOPIC.values():
        for field_name, info in model.model_fields.items():
            if field_name.endswith(("_deg", "_s", "_c")):
                assert "[" in (info.description or ""), f"{model.__name__}.{field_name} lacks a unit"


def test_round_trip_and_key() -> None:
    ev = AlertChanged(
        alert_id="A1",
        action="created",
        event_key="sb1",
        missions=["SVOM"],
        mission="SVOM",
        role="observation",
        ivorn="ivo://x#1",
        trigger_time=datetime(2026, 4, 21, 4, 13, 17, tzinfo=UTC),
        ra_deg=189.98,
        dec_deg=-17.77,
    ).stamped(producer="alerts", sent_at=datetime(2026, 4, 21, 4, 13, 20, tzinfo=UTC))
    back = AlertChanged.model_validate_json(ev.model_dump_json())
    assert back == ev
    assert back.key() == "A1"
    assert back.correlation_id == str(ev.event_id)


def test_invalid_payloads_are_refused_with_the_field() -> None:
    with pytest.raises(ValidationError, match="dec_deg"):
        AlertChanged(
            alert_id="A",
            action="created",
            event_key="k",
            missions=[],
            mission="M",
            role="observation",
            ivorn="i",
            trigger_time=datetime(2026, 1, 1, tzinfo=UTC),
            dec_deg=95.0,
        )
    with pytest.raises(ValidationError, match="command"):
        DeviceCommand(device_id="telescope", command="dance")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="extra"):
        Event.model_validate({"unexpected": 1, "event_id": str(uuid.uuid4())})


def test_asyncapi_lists_every_topic_with_key_producers_consumers() -> None:
    doc = build_asyncapi()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert ARCH_TOPICS | {"pyros.dlq", "pyros.heartbeat"} == addresses
    for c in doc["channels"].values():
        (msg_name,) = c["messages"]
        msg = doc["components"]["messages"][msg_name]
        assert msg["bindings"]["kafka"]["key"]["description"]
    refs = re.findall(r'"\$ref": "#/components/schemas/([A-Za-z]+)"', json.dumps(doc))
    assert refs and set(refs) <= set(doc["components"]["schemas"])


def test_asyncapi_is_valid_for_the_official_parser(tmp_path: Path) -> None:
    parser_dir = ROOT / ".cache" / "asyncapi" / "node_modules"
    if shutil.which("node") is None or not (parser_dir / "@asyncapi" / "parser").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("node or @asyncapi/parser missing (scripts/setup.sh installs it)")
        pytest.skip("node or @asyncapi/parser missing; run scripts/setup.sh")
    f = tmp_path / "asyncapi.yaml"
    f.write_text(asyncapi_yaml())
    out = subprocess.run(
        ["node", str(ROOT / "tools" / "validate_asyncapi.mjs"), str(f)],
        capture_output=True,
        text=True,
        env={**os.environ, "ASYNCAPI_PARSER_DIR": str(parser_dir)},
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "VALID asyncapi 3.0.0 channels=13" in out.stdout
