"""The packet re-timer of the end-to-end tier (no process needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyros_alerts.domain.parsing import parse_packet
from retime import manifest, packet_isotime, parse_iso, read_packet, retime, retime_event

WHEN = datetime(2031, 7, 14, 3, 25, 41, 250000, tzinfo=UTC)
GRB_MISSIONS = {"SVOM", "Swift", "INTEGRAL", "Fermi"}
OBSERVATIONS = [row for row in manifest() if row["role"] == "observation" and row["isotime"]]


def _num(x: str) -> float | None:
    return float(x) if x else None


@pytest.mark.parametrize("row", OBSERVATIONS, ids=[r["path"] for r in OBSERVATIONS])
def test_trigger_time_moves_position_stays(row: dict[str, str]) -> None:
    original = parse_packet(read_packet(row["path"]))
    new = retime(row["path"], when=WHEN, tag="unit")
    parsed = parse_packet(new.xml)

    assert parsed.trigger_time == WHEN == new.trigger_time
    assert (parsed.ra_deg, parsed.dec_deg, parsed.error_deg) == (
        original.ra_deg,
        original.dec_deg,
        original.error_deg,
    )
    assert parsed.mission == original.mission and parsed.packet_type == original.packet_type
    assert parsed.role == original.role and parsed.is_grb == original.is_grb
    assert parsed.ivorn != original.ivorn and parsed.ivorn == new.ivorn
    # The mission T0 (SVOM Alert_Seq_T0) keeps its distance to the trigger time.
    assert parsed.event_time - parsed.trigger_time == original.event_time - original.trigger_time
    if row["mission"] in GRB_MISSIONS:
        assert parsed.event_key != original.event_key


def test_who_date_and_burst_tjd_sod_move_too() -> None:
    path = "swift/bat_grb_pos_1125809.xml"
    raw = read_packet(path)
    new = retime(path, when=WHEN, tag="unit").xml.decode()
    shift = WHEN - packet_isotime(raw)
    # <Date>2022-09-30T11:12:15</Date>, ISOTime 2022-09-30T11:11:52.12
    assert "2022-09-30" not in new
    date = new.split("<Date>", 1)[1].split("</Date>", 1)[0]
    assert abs(parse_iso(date) - (parse_iso("2022-09-30T11:12:15") + shift)) < timedelta(milliseconds=1)
    assert 'name="Burst_TJD"    value="19852"' not in new  # TJD 19852 = 2022-09-30
    tjd = int(new.split('name="Burst_TJD"', 1)[1].split('value="', 1)[1].split('"', 1)[0])
    assert tjd == (WHEN.date() - datetime(1968, 5, 24).date()).days


def test_one_event_keeps_matching_and_fresh_tags_never_collide() -> None:
    paths = ["swift/bat_grb_pos_1125809.xml", "swift/xrt_pos_1125809.xml"]
    bat, xrt = retime_event(paths, when=WHEN, tag="a")
    assert bat.event_key == xrt.event_key != "1125809"
    assert bat.trigger_time == WHEN
    # The refinement keeps its distance to the burst (2022-09-30T11:11:52.12 -> 11:14:42.14).
    assert xrt.trigger_time - bat.trigger_time == timedelta(seconds=170, milliseconds=20)
    # XRT cites the BAT packet: the citation follows the new IVORN.
    assert parse_packet(xrt.xml).citations[0].ivorn == bat.ivorn

    other_bat, _ = retime_event(paths, when=WHEN, tag="b")
    assert other_bat.event_key != bat.event_key and other_bat.ivorn != bat.ivorn
    again_bat, _ = retime_event(paths, when=WHEN, tag="a")
    assert again_bat.xml == bat.xml  # deterministic for one tag

    eclairs, mxt = retime_event(
        ["svom/sb26042105_eclairs-wakeup.xml", "svom/sb26042105_mxt-initial.xml"], when=WHEN, tag="a"
    )
    assert eclairs.event_key == mxt.event_key != "sb26042105"
    assert (mxt.ra_deg, mxt.dec_deg) == (190.0318, -17.7566)

    wake, refined = retime_event(
        ["integral/wakeup_pos_010042.xml", "integral/refined_pos_010042.xml"], when=WHEN, tag="a"
    )
    assert wake.event_key == refined.event_key != "010042"
