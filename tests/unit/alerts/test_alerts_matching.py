"""One alert per astrophysical event: replay of the corpus and the matching rules."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts_factories import corpus_dir, manifest_rows, synthetic_voevent
from hypothesis import given, settings
from hypothesis import strategies as st
from pyros_alerts.domain.matching import AlertBook, MatchPolicy, angular_separation_deg
from pyros_alerts.domain.model import Alert, IngestResult, NormalizedPacket
from pyros_alerts.domain.parsing import parse_packet

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)


def _corpus_packets() -> list[tuple[dict[str, str], NormalizedPacket]]:
    root = corpus_dir()
    return [(row, parse_packet((root / row["path"]).read_bytes())) for row in manifest_rows()]


def _replay(
    packets: list[tuple[dict[str, str], NormalizedPacket]], book: AlertBook
) -> dict[str, IngestResult]:
    return {
        row["path"]: book.ingest(p, RECEIVED + timedelta(seconds=i)) for i, (row, p) in enumerate(packets)
    }


def _assert_groups(results: dict[str, IngestResult], rows: list[dict[str, str]]) -> None:
    ids_by_group: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        group = row["same_event_group"] or row["path"]  # ungrouped packets stand alone
        ids_by_group[group].add(results[row["path"]].alert_id)
    for group, ids in ids_by_group.items():
        assert len(ids) == 1, (group, ids)
    all_ids = [next(iter(ids)) for ids in ids_by_group.values()]
    assert len(all_ids) == len(set(all_ids)), "two groups share an alert"


def test_replay_in_manifest_order_gives_one_alert_per_group() -> None:
    packets = _corpus_packets()
    book = AlertBook()
    results = _replay(packets, book)
    _assert_groups(results, [row for row, _ in packets])
    assert len(book.alerts) == len({r["same_event_group"] or r["path"] for r, _ in packets})


def test_replay_in_reverse_order_gives_the_same_grouping() -> None:
    packets = list(reversed(_corpus_packets()))
    results = _replay(packets, AlertBook())
    _assert_groups(results, [row for row, _ in packets])


def test_cross_mission_alerts_and_their_best_positions() -> None:
    book = AlertBook()
    results = _replay(_corpus_packets(), book)
    svom = results["fermi/gbm_798437606_fin_pos.xml"].alert
    assert set(svom.missions) == {"SVOM", "Fermi"}
    assert svom.best is not None and svom.best.instrument == "MXT"  # 0.027 deg beats everything
    grb170912 = results["swift/bat_grb_pos_772052_GRB170912.xml"].alert
    assert set(grb170912.missions) == {"Fermi", "Swift"}
    assert grb170912.error_deg == 0.05
    gw = results["lvk/G298048-1-Initial_GW170817.xml"].alert
    assert set(gw.missions) == {"Fermi", "LVK"}
    assert gw.ra_deg == 186.62  # the GBM circle; LVK sends a sky map


def test_actions_on_the_corpus() -> None:
    results = _replay(_corpus_packets(), AlertBook())
    act = {path: r.action for path, r in results.items()}
    assert act["svom/sb26042105_grm-trigger.xml"] == "created"
    assert act["svom/sb26042105_mxt-initial.xml"] == "updated"
    assert act["svom/sb26030408_retraction.xml"] == "retracted"
    assert results["svom/sb26030408_retraction.xml"].alert.status == "retracted"
    assert act["svom/sb26020402_retraction.xml"] == "retracted"  # retracts unseen packets
    assert act["swift/point_dir_utility.xml"] == "ignored"
    assert act["swift/bat_grb_test_pos_test.xml"] == "ignored"
    assert act["lvk/MS260401e-3-Retraction_test.xml"] == "ignored"
    assert results["lvk/MS260401e-3-Retraction_test.xml"].alert.status == "retracted"
    for path, r in results.items():
        if r.action in ("ignored", "retracted", "duplicate"):
            assert not r.request_needed, path
    # GRM trigger has no position: no request until ECLAIRs gives one.
    assert not results["svom/sb26042105_grm-trigger.xml"].request_needed
    assert results["svom/sb26042105_eclairs-wakeup.xml"].request_needed
    mxt = results["svom/sb26042105_mxt-initial.xml"]
    assert mxt.request_id == "svom-sb26042105-req" and mxt.alert.request_revision == 2
    assert not results["swift/bat_grb_pos_773082_not_grb.xml"].request_needed  # not a GRB
    assert not results["fermi/gbm_798437606_fin_pos.xml"].request_needed  # MXT stays better


def test_same_ivorn_twice_is_a_duplicate() -> None:
    book = AlertBook()
    p = parse_packet(synthetic_voevent())
    first = book.ingest(p, RECEIVED)
    second = book.ingest(p, RECEIVED + timedelta(minutes=1))
    assert (first.action, second.action) == ("created", "duplicate")
    assert second.alert_id == first.alert_id
    assert not second.request_needed
    assert len(book.get(first.alert_id).packets) == 1  # type: ignore[union-attr]


def test_test_packets_never_join_real_alerts() -> None:
    book = AlertBook()
    real = book.ingest(parse_packet(synthetic_voevent()), RECEIVED)
    test = book.ingest(
        parse_packet(synthetic_voevent(ivorn="ivo://org.svom/fsc#sb30010101_t", role="test")), RECEIVED
    )
    assert test.action == "ignored" and test.alert_id != real.alert_id and not test.request_needed


def _gbm(ivorn_suffix: str, t: str, ra: str, dec: str, err: str, trig: str = "700000000") -> str:
    return synthetic_voevent(
        ivorn=f"ivo://nasa.gsfc.gcn/Fermi#GBM_Gnd_Pos_{t}_{trig}_{ivorn_suffix}",
        packet_type="112",
        isotime=t,
        ra=ra,
        dec=dec,
        error=err,
    ).replace('<Param name="Instrument" value="ECLAIRs"/>', f'<Param name="TrigID" value="{trig}"/>')


def test_cross_mission_needs_time_and_overlapping_circles() -> None:
    svom = parse_packet(synthetic_voevent(isotime="2030-01-01T01:02:03", ra="100", dec="10", error="0.05"))
    near = parse_packet(_gbm("1", "2030-01-01T01:02:40", "103", "10", "2"))  # 37 s, 3 deg
    book = AlertBook()
    a = book.ingest(svom, RECEIVED)
    assert book.ingest(near, RECEIVED).alert_id == a.alert_id

    far_sky = parse_packet(_gbm("2", "2030-01-01T01:02:04", "160", "10", "2", trig="700000001"))
    assert AlertBook.from_alerts([a.alert]).ingest(far_sky, RECEIVED).action == "created"

    late = parse_packet(_gbm("3", "2030-01-01T01:04:00", "100", "10", "2", trig="700000002"))  # 117 s
    assert AlertBook.from_alerts([a.alert]).ingest(late, RECEIVED).action == "created"
    wide = AlertBook.from_alerts([a.alert], policy=MatchPolicy(window_s=300))
    assert wide.ingest(late, RECEIVED).action == "updated"


def test_without_position_only_a_tight_time_window_matches() -> None:
    svom = parse_packet(synthetic_voevent(isotime="2030-01-01T01:02:03"))
    alert = AlertBook().ingest(svom, RECEIVED).alert
    no_pos_5s = parse_packet(_gbm("1", "2030-01-01T01:02:08", "0", "0", "0"))
    no_pos_30s = parse_packet(_gbm("2", "2030-01-01T01:02:33", "0", "0", "0", trig="700000001"))
    assert AlertBook.from_alerts([alert]).ingest(no_pos_5s, RECEIVED).action == "updated"
    assert AlertBook.from_alerts([alert]).ingest(no_pos_30s, RECEIVED).action == "created"


def test_same_mission_different_trigger_is_a_different_alert() -> None:
    book = AlertBook()
    a = book.ingest(parse_packet(synthetic_voevent()), RECEIVED)
    b = book.ingest(
        parse_packet(
            synthetic_voevent(ivorn="ivo://org.svom/fsc#sb30010102_eclairs-wakeup", burst_id="sb30010102")
        ),
        RECEIVED,
    )
    assert b.action == "created" and b.alert_id != a.alert_id


def test_state_round_trips_through_json() -> None:
    book = AlertBook()
    packets = _corpus_packets()
    half = len(packets) // 2
    _replay(packets[:half], book)
    rebuilt = AlertBook.from_state(json.loads(json.dumps(book.to_state())))
    assert rebuilt.to_state() == book.to_state()
    straight = AlertBook()
    _replay(packets, straight)
    rest = {row["path"]: rebuilt.ingest(p, RECEIVED) for row, p in packets[half:]}
    for path, r in rest.items():
        assert r.alert_id == straight.alert_for_ivorn(r.packet.ivorn).alert_id, path  # type: ignore[union-attr]
    dup = rebuilt.ingest(packets[0][1], RECEIVED)
    assert dup.action == "duplicate"


def test_partial_retraction_keeps_a_merged_alert_alive() -> None:
    book = AlertBook()
    svom = book.ingest(parse_packet(synthetic_voevent(isotime="2030-01-01T01:02:03")), RECEIVED)
    book.ingest(parse_packet(_gbm("1", "2030-01-01T01:02:05", "123", "-12", "2")), RECEIVED)
    retraction = synthetic_voevent(
        ivorn="ivo://org.svom/fsc#sb30010101_retraction",
        packet_type="219",
        isotime="2030-01-01T01:02:03",
    )
    r = book.ingest(parse_packet(retraction), RECEIVED)
    assert r.alert_id == svom.alert_id
    assert r.action == "updated" and r.alert.status == "active"
    assert r.alert.best is not None and r.alert.best.mission == "Fermi"


def test_angular_separation() -> None:
    assert angular_separation_deg(0, 0, 90, 0) == 90.0
    assert abs(angular_separation_deg(10, 89.9, 190, 89.9) - 0.2) < 1e-9


def test_a_retraction_from_another_authority_is_recorded_and_ignored() -> None:
    """Issue 10, row 9: any authority's packet citing an alert with cite="retraction" retracted it."""
    book = AlertBook()
    svom = book.ingest(parse_packet(synthetic_voevent(isotime="2030-01-01T01:02:03")), RECEIVED)
    cite = '<EventIVORN cite="retraction">ivo://org.svom/fsc#sb30010101_eclairs-wakeup</EventIVORN>'
    foreign = synthetic_voevent(ivorn="ivo://org.example/prank#x1", citations=cite)
    r = book.ingest(parse_packet(foreign), RECEIVED + timedelta(seconds=5))
    assert r.alert_id == svom.alert_id
    assert r.action == "ignored" and r.alert.status == "active"
    assert "only SVOM" in r.reason and "org.example/prank" in r.reason
    assert r.alert.packets[-1].ivorn == "ivo://org.example/prank#x1"  # recorded, not lost
    # the issuing authority still can; and a trusted one when the policy says so
    trusting = AlertBook(policy=MatchPolicy(trusted_retractors={"SVOM": frozenset({"org.example/prank"})}))
    trusting.ingest(parse_packet(synthetic_voevent(isotime="2030-01-01T01:02:03")), RECEIVED)
    t = trusting.ingest(parse_packet(foreign), RECEIVED + timedelta(seconds=5))
    assert t.action == "retracted" and t.alert.status == "retracted"


class _ScanningBook(AlertBook):
    """The book as it was: the cross-mission match looks at every alert."""

    def _near(self, probe: object) -> list[Alert]:
        return list(self._alerts.values())


_MISSIONS = ("SVOM", "Swift", "Fermi", "INTEGRAL", "LVK", "IceCube")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_MISSIONS),
            st.integers(0, 12),  # event key: a mission's own id (repeats update an alert)
            st.floats(0, 400),  # trigger time, s
            st.floats(-30, 30),  # event time - trigger time, s
            st.one_of(st.none(), st.tuples(st.floats(0, 5), st.floats(-5, 5), st.floats(0.01, 3))),
        ),
        max_size=40,
    )
)
def test_the_time_index_finds_what_a_scan_of_every_alert_finds(stream: list[tuple[Any, ...]]) -> None:
    """Cross-mission matching through the time index gives the same alerts, actions and reasons
    as a scan of every alert, on random streams of packets from six missions."""
    base = parse_packet(synthetic_voevent())
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    fast, scan = AlertBook(), _ScanningBook()
    for i, (mission, key, t, dt_event, pos) in enumerate(stream):
        trigger = t0 + timedelta(seconds=t)
        p = dataclasses.replace(
            base,
            ivorn=f"ivo://test/{mission}#{key}-{i}",
            mission=mission,
            event_key=f"{mission}{key}",
            trigger_time=trigger,
            event_time=trigger + timedelta(seconds=dt_event),
            ra_deg=None if pos is None else pos[0],
            dec_deg=None if pos is None else pos[1],
            error_deg=None if pos is None else pos[2],
        )
        got, want = fast.ingest(p, t0 + timedelta(seconds=i)), scan.ingest(p, t0 + timedelta(seconds=i))
        assert (got.action, got.alert.alert_id, got.reason) == (want.action, want.alert.alert_id, want.reason)
    assert [a.alert_id for a in fast.alerts] == [a.alert_id for a in scan.alerts]
