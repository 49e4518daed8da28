"""The observer runs a dispatched sequence through the real device-gateway and its simulators."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
from astropy.io import fits
from fastapi import FastAPI, Header
from observer_factories import DEFAULT_ALBUMS, NIGHT, Rig, document, make_rig, plan
from pyros_common.auth import CurrentUser
from pyros_common.contracts import Dispatch, RequestChanged, SystemChanged
from pyros_observer.api import routes
from pyros_observer.domain import layout
from pyros_observer.settings import ObserverSettings


def disk_images(root: Path) -> set[str]:
    produced = root / layout.PRODUCED
    return {p.relative_to(root).as_posix() for p in produced.rglob("*.fits")}


def settled(path: str) -> str:
    return str(layout.settled(PurePosixPath(path)))


def metric(rig: Rig, name: str, labels: dict[str, str]) -> float:
    value = rig.observer.ctx.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_dispatched_sequence_is_observed_filed_and_announced(rig: Rig) -> None:
    await rig.accept("R1", document("R1", DEFAULT_ALBUMS))
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(lambda: rig.ended("R1-s1"))

    # Commands: unpark (the mount starts parked), slew, then filter, focus, exposures, dithers.
    cmds = rig.commands()
    names = [c.command for c in cmds]
    assert names[:2] == ["unpark", "slew"]
    assert all(c.timeout_s > 0 for c in cmds)
    vis_filters = [c.params["filter"] for c in cmds if c.command == "set_filter"]
    assert vis_filters == ["r", "g"] and all(
        c.device_id == "filterwheel" for c in cmds if c.command == "set_filter"
    )
    focus = [c.params["position"] for c in cmds if c.command == "set_focus"]
    assert 25_080 in focus and 25_120 in focus  # r and g thickness offsets
    exposes = [c for c in cmds if c.command == "expose"]
    assert sorted(c.device_id for c in exposes) == ["cam-nir"] * 2 + ["cam-vis"] * 4
    assert next(c for c in exposes if c.device_id == "cam-nir").params["filter"] == "J"  # recorded only
    # The VIS album moves the mount: to (10, 10) for frame 1 of plan r, back to (0, 0) for plan g.
    offsets = [(c.params["dra_arcsec"], c.params["ddec_arcsec"]) for c in cmds if c.command == "offset"]
    assert offsets == [(10.0, 10.0), (-10.0, -10.0)]

    # Observations: started ... 6 image_taken ... completed.
    obs = rig.observations("R1-s1")
    assert [o.action for o in obs] == ["started"] + ["image_taken"] * 6 + ["completed"]
    assert obs[0].images_planned == 6 and obs[-1].images_done == 6 and obs[-1].reason == ""
    assert [o.images_done for o in obs[1:-1]] == [1, 2, 3, 4, 5, 6]
    assert all(o.producer == "observer" for o in obs)

    # Images: in the layout while running, on disk where the layout settles them.
    images = rig.images("R1-s1")
    assert len(images) == 6
    for im in images:
        parts = PurePosixPath(im.path).parts
        assert parts[:3] == (layout.PRODUCED, "R1_active", "R1-s1_active"), im.path
        assert parts[3] == im.album == im.detector
        assert parts[4] == f"plan-{im.plan_index + 1}-{im.filter}"
        assert im.request_id == "R1" and im.image_type == "light" and im.taken_at is not None
    assert {(i.album, i.plan_index, i.frame) for i in images} == {
        ("VIS", 0, 0),
        ("VIS", 0, 1),
        ("VIS", 1, 0),
        ("VIS", 1, 1),
        ("NIR", 0, 0),
        ("NIR", 0, 1),
    }
    assert disk_images(rig.data_dir) == {settled(i.path) for i in images}
    # Every _active is gone: the sequence ended, and with it every known sequence of R1.
    assert not [p for p in (rig.data_dir / layout.PRODUCED).rglob("*") if p.name.endswith("_active")]
    # Nothing left in device-gateway's own folder: every image was moved, none copied.
    assert not list((rig.data_dir / "images").rglob("*.fits"))

    # Headers: the NIR image records J; the dithered VIS image records the offset pointing.
    by_key = {(i.album, i.plan_index, i.frame): i for i in images}
    nir = fits.getheader(rig.data_dir / settled(by_key[("NIR", 0, 0)].path))
    assert nir["FILTER"] == "J" and nir["DETECTOR"] == "NIR"
    vis0 = fits.getheader(rig.data_dir / settled(by_key[("VIS", 0, 0)].path))
    vis1 = fits.getheader(rig.data_dir / settled(by_key[("VIS", 0, 1)].path))
    assert vis0["FILTER"] == "r" and vis1["DEC"] > vis0["DEC"]

    # GIC links: one symlink per image, pointing at it after the renames.
    links = sorted((rig.data_dir / "EXTERNAL_ENTITIES" / "GIC" / "TO").iterdir())
    assert len(links) == 6 and all(p.is_symlink() for p in links)
    assert {p.resolve() for p in links} == {(rig.data_dir / settled(i.path)).resolve() for i in images}
    for d in ("GIC/TO", "GIC/FROM", "FSC/TO", "FSC/FROM"):
        assert (rig.data_dir / "EXTERNAL_ENTITIES" / d).is_dir()

    assert metric(rig, "pyros_observer_images_written_total", {"detector": "VIS"}) == 4
    assert metric(rig, "pyros_observer_images_written_total", {"detector": "NIR"}) == 2
    assert metric(rig, "pyros_observer_sequences_total", {"kind": "sequence", "outcome": "completed"}) == 1

    # A duplicate dispatch (the same sequence, the same night) is ignored.
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(lambda: True)
    assert [o.action for o in rig.observations("R1-s1")].count("started") == 1


async def test_a_dispatch_preempts_the_running_sequence(rig: Rig) -> None:
    await rig.accept("R1", document("R1", [{"detector": "VIS", "plans": [plan("r", 30.0, 4)]}], sequences=2))
    await rig.accept("R2", document("R2", [{"detector": "VIS", "plans": [plan("i", 2.0, 1)]}], alt=50.0))
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(lambda: len(rig.images("R1-s1")) >= 1)
    before = len(rig.commands())

    await rig.dispatch("R2", "R2-s1", preempts="R1-s1")
    await rig.run_until(lambda: rig.ended("R2-s1"))

    aborts = [c for c in rig.commands()[before:] if c.command == "abort"]
    assert [c.device_id for c in aborts] == ["cam-vis"]  # the exposure running then
    old = rig.final("R1-s1")
    assert old.action == "interrupted" and "preempted by R2-s1" in old.reason
    assert old.images_done == len(rig.images("R1-s1")) == 1
    actions = [(o.sequence_id, o.action) for o in rig.observations() if o.action != "image_taken"]
    assert actions.index(("R1-s1", "interrupted")) < actions.index(("R2-s1", "started"))
    assert rig.final("R2-s1").action == "completed" and len(rig.images("R2-s1")) == 1
    # The interrupted sequence's folder is closed; R1 runs on (its second sequence has not run).
    produced = rig.data_dir / layout.PRODUCED
    assert (produced / "R1_active" / "R1-s1").is_dir()
    assert (produced / "R2" / "R2-s1").is_dir()
    assert metric(rig, "pyros_observer_sequences_total", {"kind": "sequence", "outcome": "interrupted"}) == 1


async def test_pause_aborts_and_a_new_dispatch_resumes_where_it_stopped(rig: Rig) -> None:
    await rig.accept("R1", document("R1", [{"detector": "VIS", "plans": [plan("r", 20.0, 3)]}]))
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(lambda: len(rig.images("R1-s1")) >= 1)
    await rig.send(SystemChanged(state="paused", reason="wind 22 m/s", night=NIGHT), "majordome")
    await rig.run_until(lambda: rig.ended("R1-s1"))
    stop = rig.final("R1-s1")
    assert stop.action == "interrupted" and stop.reason == "observatory paused: wind 22 m/s"
    assert stop.images_done == 1
    assert [c.command for c in rig.commands()][-1] == "abort"
    assert (rig.data_dir / layout.PRODUCED / "R1_active" / "R1-s1").is_dir()  # closed, may reopen

    await rig.dispatch("R1", "R1-s1")  # an interrupted sequence may run again: it resumes
    await rig.run_until(lambda: rig.final("R1-s1").action == "completed")
    frames = [i.frame for i in rig.images("R1-s1")]
    assert sorted(frames) == [0, 1, 2]  # no frame taken twice
    assert rig.final("R1-s1").images_done == 3
    assert len(disk_images(rig.data_dir)) == 3


async def test_an_offline_camera_drops_its_album_and_the_other_goes_on(rig: Rig) -> None:
    await rig.accept("R1", document("R1", DEFAULT_ALBUMS))
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(
        lambda: any(c.command == "expose" and c.device_id == "cam-nir" for c in rig.commands())
    )
    rig.sims.set_power("cam-nir", False)
    await rig.gateway.handler.publish_status("cam-nir")  # what its periodic status says
    await rig.run_until(lambda: rig.ended("R1-s1"))

    end = rig.final("R1-s1")
    assert end.action == "completed"
    assert "album NIR dropped: cam-nir offline" in end.reason and "no power" in end.reason
    images = rig.images("R1-s1")
    assert {i.album for i in images} == {"VIS"} and len(images) == 4
    assert metric(rig, "pyros_observer_albums_dropped_total", {"detector": "NIR"}) == 1


async def test_a_camera_known_offline_is_dropped_before_the_sequence_starts(rig: Rig) -> None:
    rig.sims.set_power("cam-vis", False)
    await rig.gateway.handler.publish_status("cam-vis")
    await rig.accept("R1", document("R1", DEFAULT_ALBUMS))
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(lambda: rig.ended("R1-s1"))
    end = rig.final("R1-s1")
    assert end.action == "completed" and end.reason.startswith("album VIS dropped: cam-vis offline")
    assert {i.album for i in rig.images("R1-s1")} == {"NIR"}
    # NIR, the only album left, moves the telescope (it has no dithers): no VIS command at all.
    assert not [c for c in rig.commands() if c.device_id in ("cam-vis", "filterwheel")]


async def test_a_device_timeout_fails_the_plan_and_the_sequence_goes_on(rig: Rig) -> None:
    rig.sims.inject("cam-nir", "hang")  # the camera never ends: device-gateway's timeout fails it
    await rig.accept("R1", document("R1", DEFAULT_ALBUMS))
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(lambda: rig.ended("R1-s1"))
    end = rig.final("R1-s1")
    assert end.action == "completed"
    assert "plans failed: NIR plan 1 (J): cam-nir expose failed: expose timed out after 38 s" in end.reason
    assert len(rig.images("R1-s1")) == 4
    assert metric(rig, "pyros_observer_plan_failures_total", {"reason": "timeout"}) == 1


async def test_devices_that_never_answer_fail_every_plan_and_the_sequence(rig: Rig) -> None:
    await rig.accept("R1", document("R1", DEFAULT_ALBUMS))
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(lambda: any(c.command == "set_filter" for c in rig.commands()))
    rig.muted |= {"cam-vis", "cam-nir", "filterwheel", "focuser", "telescope"}  # device-gateway is gone
    await rig.run_until(lambda: rig.ended("R1-s1"), max_s=5000)
    end = rig.final("R1-s1")
    assert end.action == "failed" and end.reason.startswith("no image taken: plans failed: ")
    for what in ("VIS plan 1 (r)", "VIS plan 2 (g)", "NIR plan 1 (J)"):
        assert what in end.reason
    assert "did not answer" in end.reason
    assert rig.images("R1-s1") == []
    assert not (rig.data_dir / layout.PRODUCED / "R1_active" / "R1-s1_active").exists()
    assert metric(rig, "pyros_observer_sequences_total", {"kind": "sequence", "outcome": "failed"}) == 1


async def test_a_dispatch_that_comes_before_its_document_waits_for_it(tmp_path: Path) -> None:
    """pyros.system and pyros.requests are two consumers: the dispatch may arrive first (seen in
    benchmarks/alert_to_slew.py: "no accepted request carries sequence ...")."""
    rig = make_rig(tmp_path, ObserverSettings(document_wait_s=5.0))
    await rig.bus.start()
    await rig.observer.on_start()
    try:
        now = rig.clock.now()
        d = Dispatch(
            kind="sequence", request_id="R8", sequence_id="R8-s1", planned_start=now,
            planned_end=now + timedelta(hours=1), schedule_version=1,
        )  # fmt: skip
        sys_ev = SystemChanged(state="running", night=NIGHT, dispatch=d)
        await rig.bus.publish(SystemChanged.topic, sys_ev.stamped(producer="majordome", sent_at=now))
        for _ in range(20):
            await asyncio.sleep(0)
        rig.clock.advance(1.0)  # the document comes a second later
        doc = document("R8", [{"detector": "VIS", "plans": [plan("r", 5.0, 1)]}])
        ev = RequestChanged(
            request_id="R8", action="accepted", state="accepted", owner="alice", program="GRB", document=doc
        )
        await rig.bus.publish(RequestChanged.topic, ev.stamped(producer="routines", sent_at=rig.clock.now()))
        for _ in range(20):
            await asyncio.sleep(0)
        rig.clock.advance(0.1)  # the waiting dispatch looks again and finds it
        for _ in range(20):
            await asyncio.sleep(0)
        await rig.run_until(lambda: bool(rig.images("R8-s1")))
        assert rig.observations("R8-s1")[0].action == "started"
    finally:
        await rig.observer.on_stop()
        await rig.bus.stop()


async def test_a_dispatch_of_a_cancelled_request_fails_at_once_without_waiting(tmp_path: Path) -> None:
    """Found by benchmarks/alert_to_slew.py: a stale dispatch of a cancelled request waited the
    whole document wait (5 s) while the next alert's dispatch queued behind it."""
    rig = make_rig(tmp_path, ObserverSettings(document_wait_s=5.0))
    await rig.bus.start()
    await rig.observer.on_start()
    try:
        await rig.accept("R7", document("R7", DEFAULT_ALBUMS))
        await rig.send(
            RequestChanged(request_id="R7", action="cancelled", state="cancelled", reason="by alice"),
            "routines",
        )
        # no night time passes: the refusal must not depend on the document wait running out
        await asyncio.wait_for(rig.dispatch("R7", "R7-s1"), 5.0)
        await asyncio.wait_for(rig.settle(), 5.0)
        end = rig.final("R7-s1")
        assert end.action == "failed" and end.reason == "request R7 is cancelled"
    finally:
        await rig.observer.on_stop()
        await rig.bus.stop()


async def test_an_unknown_sequence_fails_at_once_and_handlers_never_crash(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, ObserverSettings(document_wait_s=0.0))
    await rig.bus.start()
    await rig.observer.on_start()
    try:
        await _unknown_sequence(rig)
    finally:
        await rig.observer.on_stop()
        await rig.bus.stop()


async def _unknown_sequence(rig: Rig) -> None:
    await rig.dispatch("R9", "R9-s1")
    end = rig.final("R9-s1")
    assert end.action == "failed" and "no accepted request carries sequence R9-s1" in end.reason
    # A request from another producer (alerts' submitted document) is not kept.
    await rig.send(
        RequestChanged(
            request_id="R9", action="accepted", state="accepted", document=document("R9", DEFAULT_ALBUMS)
        ),
        "alerts",
    )
    await rig.dispatch("R9", "R9-s1")
    assert [o.action for o in rig.observations("R9-s1")] == ["failed", "failed"]
    assert not rig.bus.log["pyros.dlq"]


async def test_dawn_aborts_then_calibration_frames_on_every_camera(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, ObserverSettings(dark_exposure_s=2.0))
    await rig.bus.start()
    await rig.observer.on_start()
    calib = "calibration-2026-02-28"  # majordome's ids: request and sequence alike
    try:
        await rig.accept("R1", document("R1", [{"detector": "VIS", "plans": [plan("r", 20.0, 3)]}]))
        await rig.dispatch("R1", "R1-s1")
        await rig.run_until(lambda: len(rig.images("R1-s1")) >= 1)
        await rig.send(SystemChanged(state="dawn", reason="night over", night=NIGHT), "majordome")
        assert rig.final("R1-s1").reason == "observatory dawn: night over"
        # The night is over: R1 (interrupted, never resumed) is closed all the same.
        produced = tmp_path / layout.PRODUCED
        assert (produced / "R1" / "R1-s1").is_dir() and not (produced / "R1_active").exists()
        before = len(rig.images())

        await rig.dispatch(calib, calib, kind="calibration", frames={"bias": 2, "dark": 1})  # state dawn
        await rig.run_until(lambda: rig.ended(calib))
        end = rig.final(calib)
        assert end.action == "completed" and end.kind == "calibration" and end.images_done == 6
        images = rig.images()[before:]
        assert sorted((i.detector, i.image_type) for i in images) == sorted(
            [("VIS", "bias")] * 2 + [("VIS", "dark")] + [("NIR", "bias")] * 2 + [("NIR", "dark")]
        )
        for im in images:
            assert PurePosixPath(im.path).parts[:5] == (
                layout.PRODUCED,
                "calibration",
                "2026-02-28",
                im.detector,
                im.image_type,
            )
            assert (tmp_path / im.path).is_file() and im.sequence_id == calib
        darks = [c for c in rig.commands() if c.command == "expose" and c.params["image_type"] == "dark"]
        assert [c.params["exposure_s"] for c in darks] == [2.0, 2.0]
        assert [c.params["exposure_s"] for c in rig.commands() if c.params.get("image_type") == "bias"] == [
            0.0
        ] * 4
    finally:
        await rig.observer.on_stop()
        await rig.gateway.on_stop()
        await rig.bus.stop()


def _auth(x_user: str = Header()) -> CurrentUser:
    role = {"carol": "admin", "erin": "expert"}.get(x_user, "user")
    return CurrentUser(id=1, username=x_user, role=role, programs=frozenset())


async def test_the_download_route_gathers_the_request_images(rig: Rig) -> None:
    await rig.accept("R1", document("R1", DEFAULT_ALBUMS), owner="alice")
    await rig.dispatch("R1", "R1-s1")
    await rig.run_until(lambda: rig.ended("R1-s1"))

    app = FastAPI()
    app.include_router(routes(data_dir=lambda: rig.data_dir, clock=rig.clock, auth=_auth), prefix="/api/v1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:

        async def post(user: str, request_id: str = "R1") -> httpx.Response:
            return await client.post(f"/api/v1/requests/{request_id}/download", headers={"x-user": user})

        r = await post("alice")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["files"] == 6 and body["request_id"] == "R1"
        assert body["path"].startswith("DOWNLOAD/R1-20260301T")
        folder = rig.data_dir / body["path"]
        gathered = sorted(p for p in folder.rglob("*.fits"))
        assert len(gathered) == 6
        originals = {p.name: p for p in (rig.data_dir / layout.PRODUCED).rglob("*.fits")}
        for p in gathered:
            assert p.samefile(originals[p.name])  # hard links: no copy, and they survive renames
            assert "_active" not in p.relative_to(folder).as_posix()
        assert not list((rig.data_dir / "DOWNLOAD").glob("*.tmp"))

        again = await post("carol")  # an admin, in the same second: a folder of its own
        assert again.status_code == 200 and again.json()["path"] != body["path"]
        assert (await post("erin")).status_code == 200  # an expert
        forbidden = await post("bob")
        assert forbidden.status_code == 403 and "not yours" in forbidden.json()["detail"]
        assert (await post("alice", "R404")).status_code == 404


def test_the_gateway_mounts_the_observer_routes() -> None:
    from pyros_gateway.routes import ROUTES

    assert "observer" in dict(ROUTES)


async def test_a_restarted_observer_runs_a_request_accepted_before(tmp_path: Path) -> None:
    """The observer learns a request's document only from routines' accepted event, which is not
    sent again: a restarted observer used to fail every later dispatch of a request accepted before
    it started ("no accepted request carries sequence ..."), the rest of the night lost. It now
    takes the request up again from ``OBSERVER/requests/<request>.json``; a cancellation forgets it."""
    first = make_rig(tmp_path, ObserverSettings(document_wait_s=0.0))
    await first.bus.start()
    await first.observer.on_start()
    try:
        await first.accept("R5", document("R5", DEFAULT_ALBUMS, sequences=2))
        await first.accept("R6", document("R6", DEFAULT_ALBUMS))
        await first.send(
            RequestChanged(request_id="R6", action="cancelled", state="cancelled", reason="by alice"),
            "routines",
        )
    finally:
        await first.observer.on_stop()
        await first.bus.stop()
    # A new process on the same data directory: nothing in memory, nothing replayed.
    rig = make_rig(tmp_path, ObserverSettings(document_wait_s=0.0))
    await rig.bus.start()
    await rig.observer.on_start()
    try:
        await rig.dispatch("R5", "R5-s2")
        await rig.run_until(lambda: rig.ended("R5-s2"))
        end = rig.final("R5-s2")
        assert end.action == "completed" and end.images_done == 6, end
        assert {(i.request_id, i.sequence_id) for i in rig.images()} == {("R5", "R5-s2")}
        await rig.dispatch("R6", "R6-s1")  # cancelled before the restart: not taken up again
        assert rig.final("R6-s1").action == "failed"
    finally:
        await rig.observer.on_stop()
        await rig.bus.stop()
