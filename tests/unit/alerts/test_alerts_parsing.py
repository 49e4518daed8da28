"""Safe parsing and normalisation of VOEvent packets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alerts_factories import corpus_dir, synthetic_voevent
from pyros_alerts.domain.model import RejectedPacket
from pyros_alerts.domain.parsing import MAX_PACKET_BYTES, parse_isotime, parse_packet

# Packets whose Position2D is a sender sentinel, not a localisation.
SENTINEL_POSITIONS = {
    "fermi/gbm_798437606_alert.xml",  # GBM Alert: 0/0/0
    "fermi/gbm_526890831_alert_GRB170912.xml",  # GBM Alert: 0/0/0
    "svom/sb26051101_grm-trigger.xml",  # GRM: error -1
    "snews/snews_1000194_test.xml",  # 0/0/360, all sky
}

EXPECTED_KEYS = {
    "svom/sb26042105_mxt-initial.xml": ("SVOM", "MXT", "sb26042105"),
    "svom/sb26042105_grm-trigger.xml": ("SVOM", "GRM", "sb26042105"),
    "swift/xrt_pos_1125809.xml": ("Swift", "XRT", "1125809"),
    "swift/uvot_pos_1121751.xml": ("Swift", "UVOT", "1121751"),
    "fermi/lat_793795104_updated_pos.xml": ("Fermi", "LAT", "793795104"),
    "fermi/gbm_798437606_fin_pos.xml": ("Fermi", "GBM", "798437606"),
    "lvk/S230518h-2-Initial.xml": ("LVK", "H1,L1", "S230518h"),
    "icecube/amon_gold_134191_017593623_rev1.xml": ("IceCube", "IceCube", "134191_17593623"),
    "integral/refined_pos_010042.xml": ("INTEGRAL", "IBAS", "010042"),  # TrigID says 75578
    "maxi/known_source_pos_AT_Mic.xml": ("MAXI", "GSC", "3468898070"),
    "snews/snews_1000194_test.xml": ("SNEWS", "SNEWS", "1000194"),
}


def _iso_to_dt(value: str) -> datetime:
    return datetime.fromisoformat(value.removesuffix("Z")).replace(tzinfo=UTC)


def test_every_corpus_packet_agrees_with_manifest(manifest: list[dict[str, str]]) -> None:
    assert len(manifest) == 41
    root = corpus_dir()
    for row in manifest:
        raw = (root / row["path"]).read_bytes()
        p = parse_packet(raw)
        where = row["path"]
        assert p.ivorn == row["ivorn"], where
        assert p.role == row["role"], where
        assert p.mission == row["mission"], where
        assert str(p.packet_type) == row["packet_type"], where
        assert p.is_retraction == (row["is_retraction"] == "yes"), where
        assert p.raw_size == len(raw), where
        assert p.trigger_time.tzinfo is not None and p.trigger_time.utcoffset().total_seconds() == 0
        assert p.trigger_time.microsecond % 1000 == 0, where  # ms precision
        delta = abs((p.trigger_time - _iso_to_dt(row["isotime"])).total_seconds())
        assert delta <= 0.001, where
        if row["ra_deg"] == "" or where in SENTINEL_POSITIONS:
            assert (p.ra_deg, p.dec_deg, p.error_deg) == (None, None, None), where
        else:
            assert p.ra_deg == pytest.approx(float(row["ra_deg"]), abs=1e-4), where
            assert p.dec_deg == pytest.approx(float(row["dec_deg"]), abs=1e-4), where
            assert p.error_deg == pytest.approx(float(row["error_radius_deg"]), abs=1e-4), where
        if where in EXPECTED_KEYS:
            assert (p.mission, p.instrument, p.event_key) == EXPECTED_KEYS[where]


def test_grb_flags_follow_the_senders() -> None:
    root = corpus_dir()
    flags = {
        "swift/bat_grb_pos_773082_not_grb.xml": False,  # GRB_Identified=false
        "swift/bat_grb_pos_1125809.xml": True,
        "svom/sb25082402_eclairs-catalog.xml": False,  # known catalogue source
        "svom/sb26042105_eclairs-wakeup.xml": True,
        "fermi/gbm_798437606_flt_pos.xml": True,  # Most_Likely_Index 4 = GRB
        "maxi/known_source_pos_AT_Mic.xml": False,
        "lvk/S230518h-1-Preliminary.xml": False,
    }
    for path, expected in flags.items():
        assert parse_packet((root / path).read_bytes()).is_grb is expected, path


def test_citations_keep_their_type() -> None:
    p = parse_packet((corpus_dir() / "lvk/MS260401e-3-Retraction_test.xml").read_bytes())
    assert {(c.cite, c.ivorn) for c in p.citations} == {
        ("retraction", "ivo://gwnet/LVC#MS260401e-1-Preliminary"),
        ("retraction", "ivo://gwnet/LVC#MS260401e-2-Preliminary"),
    }


def test_synthetic_packet_parses() -> None:
    p = parse_packet(synthetic_voevent())
    assert (p.mission, p.instrument, p.event_key, p.packet_type) == ("SVOM", "ECLAIRs", "sb30010101", 202)
    assert p.trigger_time == datetime(2030, 1, 1, 1, 2, 3, 456000, tzinfo=UTC)
    assert (p.ra_deg, p.dec_deg, p.error_deg) == (123.4567, -12.3456, 0.05)


def test_isotime_variants_round_to_the_millisecond() -> None:
    assert parse_isotime("2026-04-01T04:56:12.455489Z") == datetime(2026, 4, 1, 4, 56, 12, 455000, tzinfo=UTC)
    assert parse_isotime("2026-04-01T04:56:59.9996") == datetime(2026, 4, 1, 4, 57, 0, tzinfo=UTC)
    assert parse_isotime("2017-08-17T12:41:06.47") == datetime(2017, 8, 17, 12, 41, 6, 470000, tzinfo=UTC)
    assert parse_isotime("2026-04-01T04:56:12+00:00") == datetime(2026, 4, 1, 4, 56, 12, tzinfo=UTC)
    assert parse_isotime("2026-13-01T00:00:00") is None
    assert parse_isotime("yesterday") is None


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" version="2.0" role="observation"
 ivorn="ivo://x/y#z"><Who>&lol3;</Who></voe:VOEvent>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" version="2.0" role="observation"
 ivorn="ivo://x/y#z"><Who>&xxe;</Who></voe:VOEvent>"""


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (BILLION_LAUGHS, "DTD"),
        (XXE, "DTD"),
        (BILLION_LAUGHS.encode("utf-16"), "DTD"),  # the byte scan cannot see it; docinfo does
        ("<voe:VOEvent", "bad XML"),
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "bad XML"),
        (synthetic_voevent(namespace="http://www.ivoa.net/xml/VOEvent/v1.1"), "not a VOEvent 2.0"),
        (synthetic_voevent(version="1.1"), "version"),
        (synthetic_voevent(ivorn=""), "missing ivorn"),
        (synthetic_voevent(ivorn="http://example.org/x"), "ivo://"),
        (synthetic_voevent(role="bogus"), "role"),
        (synthetic_voevent(ra="twelve"), "not a number"),
        (synthetic_voevent(dec="nan"), "not finite"),
        (synthetic_voevent(ra="360.0"), "RA out of range"),
        (synthetic_voevent(dec="-90.5"), "Dec out of range"),
        (synthetic_voevent(isotime="2030-02-30T00:00:00"), "ISOTime"),
        (synthetic_voevent(isotime=""), "missing WhereWhen ISOTime"),
        ("<html><body>hello</body></html>", "not a VOEvent 2.0"),
    ],
)
def test_bad_packets_are_rejected_with_a_reason(raw: str | bytes, reason: str) -> None:
    with pytest.raises(RejectedPacket) as info:
        parse_packet(raw)
    assert reason in info.value.reason


def test_packets_over_the_size_limit_are_rejected() -> None:
    padding = "<!-- " + "x" * MAX_PACKET_BYTES + " -->"
    raw = synthetic_voevent().replace("<Who>", padding + "<Who>")
    with pytest.raises(RejectedPacket, match="larger than"):
        parse_packet(raw)
    with pytest.raises(RejectedPacket, match="larger than"):
        parse_packet(raw.encode())


def test_sentinel_and_negative_errors_give_no_position() -> None:
    assert parse_packet(synthetic_voevent(error="-1")).error_deg is None
    no_pos = parse_packet(synthetic_voevent(ra="0", dec="0", error="0"))
    assert (no_pos.ra_deg, no_pos.dec_deg, no_pos.error_deg) == (None, None, None)
    assert parse_packet(synthetic_voevent(position=False)).ra_deg is None


def test_retraction_citation_marks_a_retraction() -> None:
    cite = '<EventIVORN cite="retraction">ivo://org.svom/fsc#sb30010101_eclairs-wakeup</EventIVORN>'
    p = parse_packet(synthetic_voevent(ivorn="ivo://org.svom/fsc#sb30010101_x", citations=cite))
    assert p.is_retraction
    assert p.citations[0].cite == "retraction"
