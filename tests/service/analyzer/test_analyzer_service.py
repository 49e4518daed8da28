"""The analyzer service on the in-process bus: images in, AnalysisDone and our VOEvent out; bad input
to pyros.dlq; masters built from the night's calibration frames; the analysis route."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from pyros_analyzer.app import AnalyzerService
from pyros_analyzer.domain.candidates import separation_arcsec
from pyros_analyzer.domain.voevent import validate
from pyros_analyzer.settings import AnalyzerSettings
from pyros_common.auth import CurrentUser
from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import AlertChanged, AnalysisDone, DeadLetter, Event, ImageWritten, RequestChanged
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_simulators import VIS, Camera, ExposureRequest, Sky

TRIGGER = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SMALL = dataclasses.replace(VIS, shape=(1024, 1024))
RA, DEC = 47.0752, 40.9505
AFTERGLOW = (47.0752 + 0.012, 40.9505 - 0.006)
IVORN = "ivo://org.svom/fsc#sb26030408_eclairs-wakeup"


@dataclasses.dataclass
class Rig:
    clock: SimulatedClock
    bus: InProcessBus
    service: AnalyzerService
    cam: Camera
    data: Path
    n: int = 0

    def events(self, kind: type[Event]) -> list[Any]:
        return [kind.model_validate_json(v) for v in self.bus.log[kind.topic]]

    async def send(self, event: Event, producer: str) -> None:
        await self.bus.publish(type(event).topic, event.stamped(producer=producer, sent_at=self.clock.now()))
        for _ in range(50):
            await self.bus.drain()
            await asyncio.sleep(0.01)
            if not self.service.analyzer._lock.locked():
                await self.bus.drain()
                break

    def frame(self, when: datetime, image_type: Any = "light", exposure_s: float = 30.0) -> ImageWritten:
        self.n += 1
        # names as long as the observer's (a long RAWFILE once broke the calibrated header)
        rel = (
            Path("PRODUCED_DATA")
            / "req-1"
            / f"r-2a963f8fc52d4e95_r-2a963f8fc52d4e95-s1_VIS_p3_r_{self.n:04d}.fits"
        )
        p = self.data / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        exp = self.cam.observe(
            ExposureRequest(exposure_s, p, ra_deg=RA, dec_deg=DEC, image_type=image_type), when, self.n
        )
        data, cat = self.cam.render(exp)
        fits.PrimaryHDU(data, self.cam.header(exp, cat)).writeto(p)
        return ImageWritten(
            request_id="req-1",
            sequence_id="req-1-s1",
            album="VIS",
            plan_index=0,
            detector="VIS",
            filter="r",
            exposure_s=exposure_s,
            path=str(rel),
            frame=self.n,
            image_type=image_type,
            taken_at=when,
        )


@pytest.fixture
async def rig(tmp_path: Path) -> Any:
    clock = SimulatedClock(TRIGGER)
    bus = InProcessBus(clock=clock, retry_backoff_s=0.0)
    settings = Settings(data_dir=tmp_path, telescope_id="gft", site="gft-spm")
    sky = Sky(site=None, seed=0)
    sky.inject_transient(*AFTERGLOW, 14.0, TRIGGER, 1.0)
    svc = AnalyzerService(
        ServiceContext(bus=bus, clock=clock, settings=settings),
        analyzer_settings=AnalyzerSettings(catalogue="simulated-sky", master_min_frames=3),
    )
    svc.use_sky(sky)
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    await bus.start()
    yield Rig(clock, bus, svc, Camera(clock, SMALL, sky=sky), tmp_path)
    await bus.stop()


def alert() -> AlertChanged:
    return AlertChanged(
        alert_id="svom-sb26030408",
        action="created",
        event_key="sb26030408",
        missions=["SVOM"],
        mission="SVOM",
        role="observation",
        ivorn=IVORN,
        trigger_time=TRIGGER,
        ra_deg=RA,
        dec_deg=DEC,
        error_deg=0.05,
        is_grb=True,
        packet_ivorns=[IVORN],
        request_id="req-1",
    )


async def test_an_alert_request_yields_a_valid_voevent_within_an_arcsecond(rig: Rig) -> None:
    await rig.send(alert(), "alerts")
    for k in range(3):
        await rig.send(rig.frame(TRIGGER + timedelta(seconds=90 + 45 * k)), "observer")
    done = rig.events(AnalysisDone)
    assert len(done) == 3 and all(d.failure is None and d.solve_method for d in done), done
    assert all(d.zero_point is not None and d.n_matched >= 10 for d in done)
    reported = [d for d in done if d.voevent_path]
    assert reported, [(d.confidence, d.candidate) for d in done]
    first = reported[0]
    assert first.candidate and first.confidence is not None and first.confidence >= 0.65
    assert float(separation_arcsec(first.ra_deg, first.dec_deg, *AFTERGLOW)) < 1.0
    path = rig.data / first.voevent_path
    assert path.parent == rig.data / "EXTERNAL_ENTITIES" / "FSC" / "TO"
    packet = path.read_bytes()
    validate(packet)
    assert IVORN.encode() in packet and b'role="observation"' in packet
    # products linked (not copied) for the GIC and the FSC
    links = list((rig.data / "EXTERNAL_ENTITIES" / "GIC" / "TO").glob("*.cal.fits"))
    assert links and all(p.is_symlink() and p.resolve().is_file() for p in links)


async def test_no_afterglow_no_candidate(rig: Rig) -> None:
    rig.service.analyzer.catalogue.sky.transients.clear()  # type: ignore[attr-defined]
    await rig.send(alert(), "alerts")
    for k in range(2):
        await rig.send(rig.frame(TRIGGER + timedelta(seconds=90 + 45 * k)), "observer")
    done = rig.events(AnalysisDone)
    assert len(done) == 2 and not any(d.candidate or d.voevent_path for d in done)
    assert not list((rig.data / "EXTERNAL_ENTITIES" / "FSC" / "TO").glob("*.xml"))


async def test_a_corrupt_fits_goes_to_the_dlq_and_the_service_goes_on(rig: Rig) -> None:
    bad = rig.frame(TRIGGER + timedelta(seconds=60))
    p = rig.data / bad.path
    p.write_bytes(p.read_bytes()[:5000])  # truncated
    await rig.send(bad, "observer")
    dead = rig.events(DeadLetter)
    assert len(dead) == 1 and "corrupt FITS" in dead[0].reason and dead[0].original_topic == "pyros.images"
    done = rig.events(AnalysisDone)
    assert len(done) == 1 and done[0].failure and "corrupt FITS" in done[0].failure
    await rig.send(rig.frame(TRIGGER + timedelta(seconds=120)), "observer")
    assert rig.events(AnalysisDone)[-1].failure is None
    reg = rig.service.ctx.registry
    assert reg.get_sample_value("pyros_analyzer_images_total", {"outcome": "failed"}) == 1
    assert reg.get_sample_value("pyros_analyzer_images_total", {"outcome": "solved"}) == 1
    assert reg.get_sample_value("pyros_analyzer_solve_failures_total", {"reason": "corrupt FITS"}) == 1


async def test_masters_from_the_nights_frames_then_calibrated_images(rig: Rig) -> None:
    dawn = TRIGGER + timedelta(hours=6)
    for _ in range(3):
        await rig.send(rig.frame(dawn, "bias", 0.0), "observer")
    for _ in range(3):
        await rig.send(rig.frame(dawn, "dark", 60.0), "observer")
    masters = sorted(p.name for p in (rig.data / "MASTERS" / "VIS").rglob("*.fits"))
    assert masters == ["master-bias.fits", "master-dark.fits"]
    await rig.send(rig.frame(dawn + timedelta(minutes=5)), "observer")
    last = rig.events(AnalysisDone)[-1]
    assert last.calibrations == ["bias", "dark"] and last.problems == ["no master flat for VIS r"]
    assert last.failure is None


async def test_the_analysis_route_reads_the_request_file(rig: Rig) -> None:
    import httpx
    from fastapi import FastAPI

    await rig.send(rig.frame(TRIGGER + timedelta(seconds=60)), "observer")
    app = FastAPI()
    app.include_router(rig.service.router(), prefix="/api/v1")
    app.dependency_overrides[rig.service._auth] = lambda: CurrentUser(
        id=1, username="alice", role="admin", programs=frozenset()
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pyros") as client:
        r = await client.get("/api/v1/requests/req-1/analysis")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["request_id"] == "req-1" and len(body["images"]) == 1
        assert body["images"][0]["zero_point"] is not None and body["images"][0]["solve_method"]
        assert (await client.get("/api/v1/requests/nope/analysis")).status_code == 404


@pytest.mark.parametrize("told", [True, False], ids=["program known", "program unknown"])
async def test_the_analysis_route_shows_a_request_only_to_its_programs_and_experts(
    rig: Rig, told: bool
) -> None:
    """A user outside the request's program gets the same 404 as for a request with no image; its
    program's members, experts and admins read it. A request whose program the analyzer never
    learnt is read by experts and admins only."""
    import httpx
    from fastapi import FastAPI

    if told:
        accepted = RequestChanged(
            request_id="req-1",
            action="accepted",
            state="accepted",
            kind="alert",
            program="GRB",
            owner="alerts",
        )
        await rig.send(accepted, "routines")
    await rig.send(rig.frame(TRIGGER + timedelta(seconds=60)), "observer")
    app = FastAPI()
    app.include_router(rig.service.router(), prefix="/api/v1")
    callers = {
        "member": CurrentUser(id=2, username="bob", role="user", programs=frozenset({"GRB"})),
        "outsider": CurrentUser(id=3, username="eve", role="user", programs=frozenset({"M31"})),
        "expert": CurrentUser(id=4, username="ann", role="expert", programs=frozenset()),
    }
    seen = {}
    for name, user in callers.items():
        app.dependency_overrides[rig.service._auth] = lambda user=user: user
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pyros") as client:
            r = await client.get("/api/v1/requests/req-1/analysis")
            seen[name] = r.status_code
            if r.status_code == 404:
                assert r.json()["detail"] == "request req-1 has no analysed image yet"
    assert seen == {"member": 200 if told else 404, "outsider": 404, "expert": 200}


async def test_a_retracted_alert_gets_no_voevent(rig: Rig) -> None:
    await rig.send(alert(), "alerts")
    retraction = alert().model_copy(
        update={"action": "retracted", "retracted": True, "ivorn": "ivo://org.svom/fsc#sb26030408_retraction"}
    )
    await rig.send(retraction, "alerts")
    for k in range(3):
        await rig.send(rig.frame(TRIGGER + timedelta(seconds=90 + 45 * k)), "observer")
    done = rig.events(AnalysisDone)
    assert len(done) == 3 and any(d.candidate for d in done)  # still measured and shown
    assert not any(d.voevent_path for d in done)
    assert not list((rig.data / "EXTERNAL_ENTITIES" / "FSC" / "TO").glob("*.xml"))


async def _start(data: Path, clock: SimulatedClock, sky: Sky) -> tuple[InProcessBus, AnalyzerService]:
    bus = InProcessBus(clock=clock, retry_backoff_s=0.0)
    svc = AnalyzerService(
        ServiceContext(
            bus=bus, clock=clock, settings=Settings(data_dir=data, telescope_id="gft", site="gft-spm")
        ),
        analyzer_settings=AnalyzerSettings(catalogue="simulated-sky", master_min_frames=3),
    )
    svc.use_sky(sky)
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    await bus.start()
    return bus, svc


async def _alert_request_run(data: Path, *, restart_after: int | None) -> dict[str, Any]:
    """An alert request's four images (the afterglow in each), the analyzer restarted (a new
    service on the same data directory, nothing replayed) after image ``restart_after``."""
    clock = SimulatedClock(TRIGGER)
    sky = Sky(site=None, seed=0)
    sky.inject_transient(*AFTERGLOW, 14.0, TRIGGER, 1.0)
    bus, svc = await _start(data, clock, sky)
    rig = Rig(clock, bus, svc, Camera(clock, SMALL, sky=sky), data)
    await rig.send(alert(), "alerts")
    accepted = RequestChanged(
        request_id="req-1", action="accepted", state="accepted", kind="alert", program="GRB", owner="alerts"
    )
    await rig.send(accepted, "routines")
    for k in range(4):
        if k == restart_after:
            await rig.bus.stop()
            rig.bus, rig.service = await _start(data, clock, sky)
        await rig.send(rig.frame(TRIGGER + timedelta(seconds=90 + 20 * k)), "observer")
    await rig.bus.stop()
    doc: dict[str, Any] = json.loads((data / "ANALYSIS" / "req-1" / "analysis.json").read_text())
    for image in doc["images"]:  # how long each took differs from run to run
        for key in [k for k in image if "seconds" in k]:
            del image[key]
    return doc


@pytest.mark.parametrize("restart_after", [2, 0], ids=["between images", "before the first image"])
async def test_a_restart_takes_the_request_up_where_it_was(tmp_path: Path, restart_after: int) -> None:
    """The analyzer restarted between two images of an alert request, or after its alert and
    before its first image, ends with the analysis of an analyzer that never stopped: the images,
    the program, the alert, the candidate's track and its VOEvent are taken up again from
    ``ANALYSIS/<request>/state.json``. It used to start the request afresh and overwrite
    analysis.json with the later images alone, without program, without candidate search (the
    alert was forgotten) and with a second VOEvent."""
    steady = await _alert_request_run(tmp_path / "steady", restart_after=None)
    assert len(steady["images"]) == 4 and steady["program"] == "GRB" and len(steady["voevents"]) == 1
    assert max(c["n_detections"] for c in steady["candidates"]) >= 3
    restarted = await _alert_request_run(tmp_path / "restarted", restart_after=restart_after)
    assert restarted == steady
