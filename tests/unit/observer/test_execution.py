"""Sequence execution as data: albums, dithers, focus, outcome, states; the pointing gate."""

from __future__ import annotations

import asyncio

import pytest
from pyros_common.domain.requests import Plan, Sequence
from pyros_observer.domain import execution as ex
from pyros_observer.executor import PointingGate

CAMERAS = {"VIS": "cam-vis", "NIR": "cam-nir"}


def sequence(*detectors: str) -> Sequence:
    return Sequence.model_validate(
        {
            "name": "s",
            "id": "R-s1",
            "target": {"name": "T", "ra_deg": 10.0, "dec_deg": 20.0},
            "albums": [
                {"detector": d, "plans": [{"filter": "r", "exposure_s": 1.0, "count": 3}]} for d in detectors
            ],
        }
    )


def test_only_one_album_moves_the_telescope() -> None:
    runs = ex.album_runs(sequence("NIR", "VIS"), cameras=CAMERAS, wheels={"VIS": "filterwheel"}, focusers={})
    assert [(r.album, r.moves_telescope, r.wheel, r.focuser) for r in runs] == [
        ("NIR", False, None, None),
        ("VIS", True, "filterwheel", None),
    ]
    only_nir = ex.album_runs(sequence("NIR"), cameras=CAMERAS, wheels={}, focusers={})
    assert only_nir[0].moves_telescope  # no VIS album: the first one points
    assert ex.images_planned(runs) == 6
    with pytest.raises(KeyError, match="NIR"):
        ex.album_runs(sequence("NIR"), cameras={"VIS": "cam-vis"}, wheels={}, focusers={})


def test_dithers_cycle_and_moves_are_relative() -> None:
    p = Plan(filter="r", exposure_s=1.0, count=5, dither_arcsec=[(0.0, 0.0), (10.0, -5.0)])
    assert [ex.dither_at(p, k) for k in range(3)] == [(0.0, 0.0), (10.0, -5.0), (0.0, 0.0)]
    assert ex.dither_at(Plan(filter="r", exposure_s=1.0, count=1), 7) == (0.0, 0.0)
    assert ex.offset_move((0.0, 0.0), (10.0, -5.0)) == (10.0, -5.0)
    assert ex.offset_move((10.0, -5.0), (0.0, 0.0)) == (-10.0, 5.0)
    assert ex.offset_move((1.0, 1.0), (1.0, 1.0)) is None
    ra, dec = ex.offset_pointing(359.9999, 0.0, (3.6, 3.6))
    assert 0.0 <= ra < 360.0 and dec == pytest.approx(0.001)


def test_focus_and_timeouts() -> None:
    assert ex.focus_position(25_000, {"r": 80}, "r") == 25_080
    assert ex.focus_position(25_000, {"r": 80}, "J") == 25_000
    assert ex.focus_position(10, {"x": -50}, "x") == 0
    assert ex.exposure_timeout(3.0, 5.0, 30.0) == 38.0


def test_outcome_says_what_failed() -> None:
    f = ex.PlanFailure("VIS", 1, "g", "cam-vis expose failed: boom")
    assert ex.outcome(images_done=3, failures=[], dropped={}) == ("completed", "")
    state, reason = ex.outcome(images_done=3, failures=[f], dropped={"NIR": "cam-nir offline"})
    assert state == "completed"
    assert (
        reason
        == "album NIR dropped: cam-nir offline; plans failed: VIS plan 2 (g): cam-vis expose failed: boom"
    )
    state, reason = ex.outcome(images_done=0, failures=[f], dropped={})
    assert state == "failed" and reason.startswith("no image taken: plans failed: VIS plan 2 (g)")
    assert ex.outcome(images_done=0, failures=[], dropped={}) == ("failed", "no image taken")


def test_failure_labels() -> None:
    assert ex.reason_label("cam-nir expose failed: expose timed out after 38 s") == "timeout"
    assert ex.reason_label("cam-vis did not answer expose within 8 s") == "timeout"
    assert ex.reason_label("cam-nir expose failed: cam-nir is offline (no power)") == "device_offline"
    assert ex.reason_label("image images/x.fits not found in the data directory") == "image_filing"
    assert ex.reason_label("filterwheel set_filter failed: no filter 'Q'") == "device_error"


def test_state_table() -> None:
    assert ex.transition(None, "running") == "running"
    assert ex.transition("running", "interrupted") == "interrupted"
    assert ex.transition("interrupted", "running") == "running"
    for bad in (("completed", "running"), (None, "completed"), ("completed", "failed")):
        with pytest.raises(ex.IllegalTransition):
            ex.transition(*bad)  # type: ignore[arg-type]


def test_calibration_plans() -> None:
    plans = ex.calibration_plans({"bias": 5, "dark": 2}, dark_s=30.0, flat_s=5.0)
    assert [(p.image_type, p.exposure_s, p.count) for p in plans] == [("bias", 0.0, 5), ("dark", 30.0, 2)]
    with pytest.raises(ValueError, match="unknown calibration frame type 'light'"):
        ex.calibration_plans({"light": 1}, dark_s=1.0, flat_s=1.0)


async def test_the_pointing_gate_holds_moves_while_a_camera_exposes() -> None:
    gate = PointingGate()
    log: list[str] = []
    release_nir = asyncio.Event()

    async def nir_exposure() -> None:
        async with gate.exposing():
            log.append("nir start")
            await release_nir.wait()
            log.append("nir end")

    async def vis_dither() -> None:
        async with gate.moving():
            log.append("move")

    async def nir_next() -> None:
        async with gate.exposing():
            log.append("nir next")

    t1 = asyncio.create_task(nir_exposure())
    await asyncio.sleep(0)
    t2 = asyncio.create_task(vis_dither())
    await asyncio.sleep(0)
    t3 = asyncio.create_task(nir_next())  # a waiting move goes first: the mount is not starved
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["nir start"]
    release_nir.set()
    await asyncio.gather(t1, t2, t3)
    assert log == ["nir start", "nir end", "move", "nir next"]
