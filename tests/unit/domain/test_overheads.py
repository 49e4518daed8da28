import pytest
from pyros_common.domain.requests import Album, Plan, Sequence, Target
from pyros_common.domain.requests.durations import (
    album_duration_s,
    dither_moves,
    sequence_duration_s,
)
from pyros_common.domain.sky.overheads import Overheads

OH = Overheads(
    slew_s=100.0, filter_change_s=10.0, readout_s=5.0, dither_move_s=8.0, readout_s_by_detector={"NIR": 1.0}
)


def plan(f: str = "r", exp: float = 60.0, n: int = 5, dither: list[list[float]] | None = None) -> Plan:
    return Plan.model_validate({"filter": f, "exposure_s": exp, "count": n, "dither_arcsec": dither or []})


def test_dither_moves() -> None:
    assert dither_moves(plan(dither=[])) == 0
    assert dither_moves(plan(dither=[[0, 0], [10, 10]], n=5)) == 4
    assert dither_moves(plan(dither=[[5, 0]], n=3)) == 1  # one move to the offset, then stay
    assert dither_moves(plan(dither=[[0, 0], [0, 0]], n=3)) == 0


def test_album_counts_filter_changes_only_when_the_filter_changes() -> None:
    album = Album(detector="VIS", plans=[plan("r", n=2), plan("r", n=1), plan("i", n=1)])
    # 4 images * (60 + 5) + 2 filter changes (first plan, r -> i)
    assert album_duration_s(album, OH) == pytest.approx(4 * 65 + 2 * 10)


def test_sequence_is_slew_plus_longest_album_in_parallel() -> None:
    vis = Album(detector="VIS", plans=[plan("r", exp=60, n=5, dither=[[0, 0], [10, 10]])])
    nir = Album(detector="NIR", plans=[plan("J", exp=30, n=4)])
    seq = Sequence(name="s", target=Target(name="M31", ra_deg=10.68, dec_deg=41.27), albums=[vis, nir])
    vis_s = 5 * (60 + 5) + 10 + 4 * 8
    nir_s = 4 * (30 + 1) + 10
    assert album_duration_s(nir, OH) == pytest.approx(nir_s)
    assert sequence_duration_s(seq, OH) == pytest.approx(100 + max(vis_s, nir_s))


def test_negative_overhead_refused() -> None:
    with pytest.raises(ValueError, match="slew_s"):
        Overheads(slew_s=-1, filter_change_s=0, readout_s=0, dither_move_s=0)
