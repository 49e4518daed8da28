"""The data layout's naming: no path leaves the data directory, names are safe, ``_active`` goes once."""

from __future__ import annotations

import datetime as dt
import posixpath
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyros_observer.domain import layout

ids = st.text(min_size=1, max_size=300)  # anything: ids reach us from events
filters = st.text(min_size=1, max_size=30)
small = st.integers(min_value=0, max_value=10_000)
ROOT = "/data/pyros"


def _stays_inside(rel: PurePosixPath) -> bool:
    joined = posixpath.normpath(posixpath.join(ROOT, str(rel)))
    return joined.startswith(ROOT + "/") and not rel.is_absolute()


@given(ids)
def test_safe_names_are_file_system_safe(text: str) -> None:
    name = layout.safe_name(text)
    assert layout.SAFE.match(name), name
    assert name not in (".", "..") and "/" not in name and "\x00" not in name
    assert len(name.encode()) <= layout.MAX_NAME
    assert not name.endswith(layout.ACTIVE)
    assert layout.safe_name(name) == name  # a safe name is kept as it is


@given(ids, ids)
def test_different_ids_never_share_a_name(a: str, b: str) -> None:
    if a != b:
        assert layout.safe_name(a) != layout.safe_name(b)


@given(ids, ids, ids, small, filters, small)
def test_no_image_path_escapes_the_data_dir(
    request_id: str, sequence_id: str, album: str, plan_index: int, filter_name: str, frame: int
) -> None:
    path = layout.image_path(
        request_id=request_id,
        sequence_id=sequence_id,
        album=album,
        plan_index=plan_index,
        filter_name=filter_name,
        frame=frame,
    )
    assert _stays_inside(path)
    assert path.parts[0] == layout.PRODUCED and len(path.parts) == 6
    assert path.parts[1].endswith(layout.ACTIVE) and path.parts[2].endswith(layout.ACTIVE)
    assert all(len(p.encode()) <= 255 for p in path.parts)  # every file system's limit
    assert path.name.endswith(".fits")
    settled = layout.settled(path)
    assert _stays_inside(settled) and layout.ACTIVE not in "".join(settled.parts[1:3])
    assert settled in layout.candidates(path) and path in layout.candidates(path)


@given(st.dates(), ids, ids, small)
def test_calibration_paths_stay_inside(night: dt.date, detector: str, sequence_id: str, frame: int) -> None:
    for kind in ("bias", "dark", "flat", detector):
        p = layout.calibration_path(
            night=night, detector=detector, image_type=kind, sequence_id=sequence_id, frame=frame
        )
        assert _stays_inside(p) and p.parts[:3] == (layout.PRODUCED, layout.CALIBRATION, night.isoformat())


@given(ids, st.datetimes(timezones=st.just(dt.UTC)), st.integers(min_value=0, max_value=99))
def test_download_folders_stay_inside(request_id: str, when: dt.datetime, attempt: int) -> None:
    p = layout.download_dir(request_id, when, attempt)
    assert _stays_inside(p) and p.parts[0] == layout.DOWNLOAD and len(p.parts) == 2


@given(st.text(max_size=60))
def test_active_removal_is_idempotent(name: str) -> None:
    once = layout.strip_active(name)
    assert layout.strip_active(once) == once
    assert not once.endswith(layout.ACTIVE)
    assert layout.strip_active(layout.active(once)) == once
    assert layout.active(layout.active(name)) == layout.active(name)


@given(ids)
def test_active_of_a_safe_name_round_trips(text: str) -> None:
    name = layout.safe_name(text)
    assert layout.strip_active(layout.active(name)) == name


@given(st.text(max_size=80))
def test_inside_never_accepts_an_escape(text: str) -> None:
    rel = layout.inside(text)
    if rel is not None:
        assert _stays_inside(rel)


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x", "a/../../x", "..", ".", "a/..", "x\x00y"])
def test_inside_rejects(bad: str) -> None:
    assert layout.inside(bad) is None


def test_names_of_the_layout() -> None:
    assert layout.plan_dir(0, "r") == "plan-1-r"
    assert layout.safe_name("R1-s1") == "R1-s1"
    assert layout.safe_name("a:b") != layout.safe_name("a/b")
    assert layout.safe_name("x_active").startswith("x_active-")
    assert [str(d) for d in layout.external_dirs()] == [
        "EXTERNAL_ENTITIES/GIC/TO",
        "EXTERNAL_ENTITIES/GIC/FROM",
        "EXTERNAL_ENTITIES/FSC/TO",
        "EXTERNAL_ENTITIES/FSC/FROM",
    ]
    img = PurePosixPath("PRODUCED_DATA/R1_active/R1-s1_active/VIS/plan-1-r/x.fits")
    assert str(layout.settled(img)) == "PRODUCED_DATA/R1/R1-s1/VIS/plan-1-r/x.fits"
    link = layout.gic_link(img)
    assert str(link) == "EXTERNAL_ENTITIES/GIC/TO/x.fits"
    target = layout.link_target(link, img)
    assert posixpath.normpath(posixpath.join(str(link.parent), target)) == str(img)
    assert layout.night_of(dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC), -115.46) == dt.date(2026, 2, 28)
