"""Strategies as data and the alert request documents they build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alerts_factories import corpus_dir, manifest_rows, synthetic_voevent
from pyros_alerts.domain.matching import AlertBook
from pyros_alerts.domain.parsing import parse_packet
from pyros_alerts.domain.strategies import (
    StrategyError,
    build_request,
    list_strategies,
    load_strategies,
    pick_strategy,
    strategy_for_alert,
)
from pyros_common.domain.requests.document import RequestDocument

RECEIVED = datetime(2030, 1, 1, 1, 5, tzinfo=UTC)


def test_shipped_strategies_load_and_list() -> None:
    strategies = load_strategies()
    names = {s["name"] for s in list_strategies(strategies)}
    assert {"svom_grb", "swift_grb", "fermi_gbm", "fermi_lat", "integral_grb", "fallback"} <= names
    assert sum(s.fallback for s in strategies.values()) == 1


def test_pick_default_then_fallback() -> None:
    strategies = load_strategies()
    assert pick_strategy(strategies, mission="SVOM", packet_type=209).name == "svom_grb"
    assert pick_strategy(strategies, mission="Swift", packet_type=67).name == "swift_grb"
    assert pick_strategy(strategies, mission="Fermi", packet_type=121).name == "fermi_lat"
    assert pick_strategy(strategies, mission="MAXI", packet_type=135).name == "fallback"


def test_build_request_document() -> None:
    book = AlertBook()
    result = book.ingest(parse_packet(synthetic_voevent()), RECEIVED)
    assert result.request_needed
    strategy = strategy_for_alert(load_strategies(), result.alert)
    typed = build_request(result.alert, strategy, received_at=RECEIVED)
    assert isinstance(typed, RequestDocument)
    assert typed.priority == strategy.priority and typed.quota_override is (strategy.quota == "override")
    doc = typed.model_dump(mode="json", by_alias=True)
    assert doc["schema"] == "pyros.request/1"
    assert doc["kind"] == "alert" and doc["program"] == "GRB"
    assert doc["name"] == result.request_id == "svom-sb30010101-req"
    assert doc["alert_id"] == result.alert_id
    assert datetime.fromisoformat(doc["valid_from"]) == RECEIVED
    assert datetime.fromisoformat(doc["valid_until"]) == RECEIVED + timedelta(hours=strategy.validity_hours)
    seq = doc["sequences"][0]
    assert seq["target"] == {"name": "GRB 300101.043", "ra_deg": 123.4567, "dec_deg": -12.3456}
    assert seq["date"] == "tonight" and seq["mandatory"] is True
    assert {a["detector"] for a in seq["albums"]} == {"VIS", "NIR"}
    plan = seq["albums"][0]["plans"][0]
    assert set(plan) == {"filter", "exposure_s", "count", "dither_arcsec"}
    assert seq["id"] is None  # ids are made by routines when it accepts the request
    assert all(len(d) == 2 for d in plan["dither_arcsec"])


def test_no_request_for_a_retracted_or_positionless_alert() -> None:
    book = AlertBook()
    strategies = load_strategies()
    created = book.ingest(parse_packet(synthetic_voevent(position=False)), RECEIVED)
    assert not created.request_needed
    with pytest.raises(StrategyError):
        build_request(created.alert, strategies["svom_grb"], received_at=RECEIVED)
    retraction = synthetic_voevent(ivorn="ivo://org.svom/fsc#sb30010101_retraction", packet_type="219")
    retracted = book.ingest(parse_packet(retraction), RECEIVED)
    assert retracted.action == "retracted"
    with pytest.raises(StrategyError):
        build_request(retracted.alert, strategies["svom_grb"], received_at=RECEIVED)


def test_invalid_strategy_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nvalidity_hours: 2\nsequences:\n  - name: s\n    albums:\n"
        "      - detector: VIS\n        plans: [{filter: r, exposure_s: 10, count: 1}]\n"
    )
    with pytest.raises(StrategyError, match="VIS and one NIR"):
        load_strategies(tmp_path)


def test_strategy_the_request_model_refuses_fails_at_load_naming_file_and_field(tmp_path: Path) -> None:
    """The bug of issue 9: offsets up to 10 in strategies, +-5 in the request model."""
    (tmp_path / "loud.yaml").write_text(
        "name: loud\nfallback: true\nvalidity_hours: 2\nsequences:\n  - name: s\n    priority_offset: 10\n"
        "    albums:\n      - detector: VIS\n        plans: [{filter: r, exposure_s: 10, count: 1}]\n"
        "      - detector: NIR\n        plans: [{filter: J, exposure_s: 10, count: 1}]\n"
    )
    with pytest.raises(StrategyError) as err:
        load_strategies(tmp_path)
    assert "loud.yaml" in str(err.value) and "sequences.0.priority_offset" in str(err.value)


def test_every_shipped_strategy_builds_a_valid_request_from_a_corpus_packet_of_each_mission() -> None:
    strategies = load_strategies()
    used: set[str] = set()
    missions: set[str] = set()
    for row in manifest_rows():
        book = AlertBook()
        try:
            packet = parse_packet((corpus_dir() / row["path"]).read_bytes())
        except Exception:
            continue
        result = book.ingest(packet, RECEIVED)
        if not result.request_needed:
            continue
        strategy = strategy_for_alert(strategies, result.alert)
        doc = build_request(result.alert, strategy, received_at=RECEIVED)
        RequestDocument.model_validate(doc.model_dump(mode="json", by_alias=True))
        used.add(strategy.name)
        missions.add(packet.mission)
    assert {"SVOM", "Swift", "INTEGRAL", "Fermi"} <= missions
    assert {"svom_grb", "swift_grb", "integral_grb", "fermi_gbm"} <= used


def test_the_first_sequence_of_a_strategy_outranks_the_later_ones() -> None:
    """The early look at a burst comes first (a rescaling once gave SVOM's two sequences one rank)."""
    for strategy in load_strategies().values():
        offsets = [q.priority_offset for q in strategy.sequences]
        assert all(offsets[0] > o for o in offsets[1:]), (strategy.name, offsets)
