"""Our VOEvent: schema-valid, role observation, citing the alert, position and magnitude."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pyros_analyzer.domain.voevent import CandidateReport, InvalidVoevent, build, validate

REPORT = CandidateReport(
    alert_ivorn="ivo://org.svom/fsc#sb26042105_eclairs-wakeup",
    candidate_id="req-1-c1",
    ra_deg=150.1234567,
    dec_deg=-20.5,
    error_arcsec=0.3,
    magnitude=15.2,
    magnitude_error=0.02,
    filter="r",
    observed_at=datetime(2026, 4, 21, 5, 3, tzinfo=UTC),
    since_trigger_s=180.0,
    confidence=0.9,
    n_detections=3,
    fading_slope=2.4,
)


def test_packet_is_valid_and_says_what_we_found() -> None:
    import voeventparse as vp

    pkt = build(
        REPORT,
        stream="ivo://pyros/gft",
        author_ivorn="ivo://pyros/gft",
        now=datetime(2026, 4, 21, 5, 4, tzinfo=UTC),
    )
    validate(pkt)
    v = vp.loads(pkt)
    assert v.attrib["role"] == "observation" and v.attrib["ivorn"] == "ivo://pyros/gft#req-1-c1"
    assert [str(c) for c in v.Citations.EventIVORN] == [REPORT.alert_ivorn]
    pos = vp.get_event_position(v)
    assert pos.ra == pytest.approx(150.1234567) and pos.dec == -20.5
    assert pos.err == pytest.approx(0.3 / 3600, rel=1e-3)
    params = vp.get_grouped_params(v)["afterglow_candidate"]
    assert float(params["magnitude"]["value"]) == 15.2 and params["filter"]["value"] == "r"


def test_a_broken_packet_fails_validation() -> None:
    pkt = build(
        REPORT,
        stream="ivo://pyros/gft",
        author_ivorn="ivo://pyros/gft",
        now=datetime(2026, 4, 21, tzinfo=UTC),
    )
    with pytest.raises(InvalidVoevent):
        validate(pkt.replace(b"<Who>", b"<Whom>").replace(b"</Who>", b"</Whom>"))
