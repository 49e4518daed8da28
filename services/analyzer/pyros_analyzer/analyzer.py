"""The analyzer's work: each image through the pipeline, candidates per alert request, our VOEvent.

State is the night's: the alerts and which request each one made, the tracks of each alert
request, the results served by the API. Each request's part is kept in memory and written to
``ANALYSIS/<request>/state.json`` with every image, so a restarted analyzer takes the request up
again where it was (its images, program, alert, tracks and reported candidates) at its next image.
Products go under ``ANALYSIS/<request>/``, masters under ``MASTERS/``, our VOEvents into
``EXTERNAL_ENTITIES/FSC/TO/``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from pyros_common.clock import Clock, hold
from pyros_common.contracts import AlertChanged, AnalysisDone, DeadLetter, Event, ImageWritten, RequestChanged

from pyros_analyzer.api import analysis_file, read_json
from pyros_analyzer.catalogue import Catalogue
from pyros_analyzer.domain import candidates as cand
from pyros_analyzer.domain.calibration import CalibrationError, Master
from pyros_analyzer.domain.voevent import CandidateReport, InvalidVoevent, build, validate
from pyros_analyzer.masters import MasterStore, night_of
from pyros_analyzer.metrics import AnalyzerMetrics
from pyros_analyzer.pipeline import ImageResult, analyse
from pyros_analyzer.settings import AnalyzerSettings
from pyros_analyzer.vtp import submit

log = structlog.get_logger("pyros.analyzer")
Publish = Callable[[Event, str | None], Awaitable[None]]


@dataclass
class AlertInfo:
    alert_id: str
    ivorn: str
    circle: cand.ErrorCircle | None
    trigger_time: datetime
    is_grb: bool
    retracted: bool = False


@dataclass
class RequestAnalysis:
    """What the API shows for one request."""

    request_id: str
    images: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    tracks: list[cand.Track] = field(default_factory=list)
    reported: dict[int, str] = field(default_factory=dict)  # track index -> our IVORN


class Analyzer:
    def __init__(
        self,
        *,
        data_dir: Path,
        settings: AnalyzerSettings,
        catalogue: Catalogue,
        clock: Clock,
        metrics: AnalyzerMetrics,
        publish: Publish,
        telescope: str = "GFT",
    ) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.catalogue = catalogue
        self.clock = clock
        self.metrics = metrics
        self.publish = publish
        self.telescope = telescope
        self.masters = MasterStore(data_dir / "MASTERS", min_frames=settings.master_min_frames)
        self.alerts: dict[str, AlertInfo] = {}
        self.request_alert: dict[str, str] = {}
        self.requests: dict[str, RequestAnalysis] = {}
        self.request_program: dict[str, str] = {}
        self._lock = asyncio.Lock()  # one image at a time: tracks grow in order, CPUs are few

    # --- what the other services told us -------------------------------------------------

    def on_alert(self, e: AlertChanged) -> None:
        circle = None
        if e.ra_deg is not None and e.dec_deg is not None and e.error_deg is not None:
            circle = cand.ErrorCircle(e.ra_deg, e.dec_deg, e.error_deg)
        self.alerts[e.alert_id] = AlertInfo(
            e.alert_id,
            e.ivorn,
            circle,
            e.trigger_time,
            e.is_grb,
            retracted=e.retracted or e.action == "retracted",
        )
        if e.request_id:
            self.request_alert[e.request_id] = e.alert_id
            self._remember(e.request_id)

    def on_request(self, e: RequestChanged) -> None:
        doc = e.document
        program = e.program or (doc.program if doc is not None else "")
        if program:  # for the route's access check (analysis.json says it)
            self.request_program[e.request_id] = program
        if e.kind == "alert" and doc is not None and doc.alert_id:
            self.request_alert[e.request_id] = doc.alert_id
        if e.kind == "alert" and (program or e.request_id in self.request_alert):
            self._remember(e.request_id)

    def _remember(self, request_id: str) -> None:
        """An alert request's program and alert, on disk before its first image: a restart in
        between must not lose the afterglow search (the bus does not say them again)."""
        try:
            self._write(self._dir(request_id) / "state.json", self._state(self._request(request_id)))
        except OSError:
            log.exception("analysis state not written", request_id=request_id)

    # --- images --------------------------------------------------------------------------

    async def on_image(self, e: ImageWritten, correlation_id: str | None) -> None:
        path = locate(self.data_dir, e.path)
        async with self._lock:
            if e.image_type != "light":
                await self._calibration_frame(e, path, correlation_id)
                return
            when = e.taken_at or self.clock.now()
            night = night_of(when)
            masters: dict[str, Master | None] = {
                "bias": self.masters.latest("bias", e.detector, night),
                "dark": self.masters.latest("dark", e.detector, night),
                "flat": self.masters.latest("flat", e.detector, night, e.filter),
            }
            out = self.data_dir / "ANALYSIS" / e.request_id
            s = self.settings
            t0 = self.clock.monotonic()
            async with hold(self.clock):
                res = await asyncio.to_thread(
                    analyse,
                    path,
                    detector=e.detector,
                    filter=e.filter,
                    exposure_s=e.exposure_s,
                    taken_at=e.taken_at,
                    masters=masters,
                    catalogue=self.catalogue,
                    out_dir=out,
                    rel_to=self.data_dir,
                    detect_sigma=s.detect_sigma,
                    max_offset_arcmin=s.max_offset_arcmin,
                    max_rotation_deg=s.max_rotation_deg,
                    min_matches=s.min_matches,
                    saturation_adu=s.saturation_adu,
                    use_astrometry_net=s.astrometry_net,
                )
                self.metrics.analysed.labels(outcome="failed" if res.failure else "solved").inc()
                self.metrics.seconds.observe(res.seconds)
                if res.failure:
                    reason = res.failure.split(":")[0]
                    self.metrics.solve_failures.labels(reason=reason if len(reason) < 40 else "other").inc()
                done = await self._candidates(e, res)
                self._link_products(res)
            ra = self._request(e.request_id)
            ra.images.append(_image_summary(e, res))
            await asyncio.to_thread(self._save, ra)
            await self.publish(done, correlation_id)
            if res.failure:
                await self._dead_letter(e, res.failure, correlation_id)
            elif any(p.startswith("no master") for p in res.problems):
                self.metrics.missing_masters.inc()
            self.metrics.latency.observe(max(0.0, self.clock.monotonic() - t0))

    async def _calibration_frame(self, e: ImageWritten, path: Path, cid: str | None) -> None:
        when = e.taken_at or self.clock.now()
        try:
            async with hold(self.clock):
                m = await asyncio.to_thread(
                    self.masters.add_frame,
                    e.image_type,  # type: ignore[arg-type]  # not light: bias, dark or flat
                    e.detector,
                    when,
                    path,
                    e.exposure_s,
                    e.filter,
                )
        except (CalibrationError, OSError, ValueError) as exc:
            await self._dead_letter(e, f"master {e.image_type}: {exc}", cid)
            return
        if m is not None:
            self.metrics.masters.labels(kind=m.kind).inc()
            log.info("master built", kind=m.kind, camera=m.camera, night=m.night, frames=m.n_frames)

    async def _candidates(self, e: ImageWritten, res: ImageResult) -> AnalysisDone:
        done = AnalysisDone(
            request_id=e.request_id,
            image_path=e.path,
            calibrations=res.calibrations,
            n_sources=res.n_sources,
            calibrated_path=res.calibrated_path,
            filter=e.filter,
            solve_method=res.solve_method,
            n_matched=res.n_matched,
            wcs_error_arcsec=res.wcs_error_arcsec,
            zero_point=res.zero_point.zp if res.zero_point else None,
            problems=res.problems,
            failure=res.failure,
        )
        ra = self._request(e.request_id)  # after a restart: its alert, from its state file
        alert = self.alerts.get(self.request_alert.get(e.request_id, ""))
        if alert is None or alert.circle is None or res.wcs is None or res.mid_time is None:
            return done
        w = res.sources_world
        stars = res.stars
        assert stars is not None
        found = cand.new_sources(
            w["ra"],
            w["dec"],
            w["mag"],
            w["mag_err"],
            w["snr"],
            w["pos_err"],
            stars.ra_deg,
            stars.dec_deg,
            stars.mag,
            alert.circle,
            image=e.path,
            taken_at=res.mid_time,
            filter=e.filter,
            min_snr=self.settings.candidate_min_snr,
        )
        cand.update(ra.tracks, found, res.covers, link_arcsec=self.settings.link_arcsec)
        if not ra.tracks:
            return done
        k, best = max(enumerate(ra.tracks), key=lambda kv: kv[1].confidence(alert.trigger_time))
        conf = best.confidence(alert.trigger_time)
        bra, bdec, berr = best.position
        last = best.latest()
        slope, _ = best.fading(alert.trigger_time)
        since = (last.taken_at - alert.trigger_time).total_seconds()
        summary = {
            "ra_deg": bra,
            "dec_deg": bdec,
            "error_arcsec": berr,
            "magnitude": last.mag,
            "magnitude_error": last.mag_err,
            "filter": last.filter,
            "since_trigger_s": since,
            "confidence": conf,
            "n_detections": len(best.detections),
            "fading_slope": slope,
        }
        done = done.model_copy(
            update={
                "candidate": conf >= self.settings.candidate_threshold,
                "ra_deg": bra,
                "dec_deg": bdec,
                "magnitude": last.mag,
                "error_arcsec": berr,
                "confidence": conf,
                "since_trigger_s": since,
                "alert_ivorn": alert.ivorn,
            }
        )
        if conf >= self.settings.candidate_threshold and not alert.retracted:  # a retracted burst: no packet
            ivorn = await self._report(e.request_id, k, alert, summary, last.taken_at)
            if ivorn is not None:
                done = done.model_copy(
                    update={"voevent_ivorn": ivorn, "voevent_path": self._voevent_rel(e.request_id, k)}
                )
        ra.candidates = [c for c in ra.candidates if c.get("track") != k] + [{"track": k, **summary}]
        return done

    def _request(self, request_id: str) -> RequestAnalysis:
        """The request's analysis: in memory, else as its state file left it (a restart), else new.

        What memory already knows from the bus (program, alert) is fresher than the file."""
        ra = self.requests.get(request_id)
        if ra is not None:
            return ra
        ra = RequestAnalysis(request_id)
        doc = read_json(self._dir(request_id) / "state.json")
        if doc is not None:
            ra = _analysis_from_state(request_id, doc)
            program = str(doc.get("program") or "")
            if program and request_id not in self.request_program:
                self.request_program[request_id] = program
            info = _alert_from_state(doc.get("alert"))
            if info is not None and request_id not in self.request_alert:
                self.request_alert[request_id] = info.alert_id
                self.alerts.setdefault(info.alert_id, info)
            log.info(
                "request taken up again", request_id=request_id, images=len(ra.images), tracks=len(ra.tracks)
            )
        self.requests[request_id] = ra
        return ra

    def _dir(self, request_id: str) -> Path:
        return self.data_dir / "ANALYSIS" / request_id

    def _save(self, ra: RequestAnalysis) -> None:
        """``ANALYSIS/<request>/state.json`` (what a restart takes up again), then
        ``analysis.json`` for the API; each written .tmp and renamed."""
        self._write(self._dir(ra.request_id) / "state.json", self._state(ra))
        doc = {
            "request_id": ra.request_id,
            "program": self.request_program.get(ra.request_id, ""),
            "images": ra.images,
            "candidates": ra.candidates,
            "voevents": sorted(ra.reported.values()),
        }
        self._write(analysis_file(self.data_dir, ra.request_id), doc)

    def _state(self, ra: RequestAnalysis) -> dict[str, Any]:
        alert = self.alerts.get(self.request_alert.get(ra.request_id, ""))
        return _state_of(ra, self.request_program.get(ra.request_id, ""), alert)

    @staticmethod
    def _write(path: Path, body: dict[str, Any]) -> None:
        """``body`` as JSON at ``path``: written to a temporary file of its own, then renamed
        (an image's save in a worker thread and an event's may write one file at once)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(body, indent=1, default=str))
        os.replace(tmp, path)

    def _voevent_rel(self, request_id: str, k: int) -> str:
        return f"EXTERNAL_ENTITIES/FSC/TO/{request_id}-c{k + 1}.xml"

    async def _report(
        self, request_id: str, k: int, alert: AlertInfo, c: dict[str, Any], at: datetime
    ) -> str | None:
        ra = self.requests[request_id]
        if k in ra.reported:
            return ra.reported[k]
        report = CandidateReport(
            alert_ivorn=alert.ivorn,
            candidate_id=f"{request_id}-c{k + 1}",
            ra_deg=c["ra_deg"],
            dec_deg=c["dec_deg"],
            error_arcsec=c["error_arcsec"],
            magnitude=c["magnitude"],
            magnitude_error=c["magnitude_error"],
            filter=c["filter"],
            observed_at=at,
            since_trigger_s=c["since_trigger_s"],
            confidence=c["confidence"],
            n_detections=c["n_detections"],
            fading_slope=c["fading_slope"],
            telescope=self.telescope,
        )
        s = self.settings
        try:
            packet = build(
                report,
                stream=s.voevent_stream,
                author_ivorn=s.voevent_stream,
                now=self.clock.now(),
                test=s.voevent_test_role,
            )
            validate(packet)
        except InvalidVoevent as exc:
            log.error("our VOEvent is invalid", error=str(exc))
            return None
        path = self.data_dir / self._voevent_rel(request_id, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(packet)
        os.replace(tmp, path)
        ivorn = f"{s.voevent_stream}#{report.candidate_id}"
        ra.reported[k] = ivorn
        self.metrics.voevents.inc()
        log.info("VOEvent written", ivorn=ivorn, path=str(path), cites=alert.ivorn)
        if s.vtp_host:
            try:
                await submit(s.vtp_host, s.vtp_port, packet, timeout_s=s.vtp_timeout_s)
                log.info("VOEvent sent to the VTP broker", host=s.vtp_host, port=s.vtp_port)
            except (OSError, TimeoutError, ValueError) as exc:
                log.warning("VOEvent not sent to the VTP broker", error=str(exc))
        return ivorn

    def _link_products(self, res: ImageResult) -> None:
        """Links (not copies) of the products for the GIC and the FSC."""
        for rel in (res.calibrated_path, res.catalogue_path):
            if rel is None:
                continue
            target = self.data_dir / rel
            for who in ("GIC", "FSC"):
                folder = self.data_dir / "EXTERNAL_ENTITIES" / who / "TO"
                folder.mkdir(parents=True, exist_ok=True)
                link = folder / target.name
                tmp = folder / (target.name + ".tmp")
                tmp.unlink(missing_ok=True)
                os.symlink(os.path.relpath(target, folder), tmp)
                os.replace(tmp, link)

    async def _dead_letter(self, e: ImageWritten, reason: str, cid: str | None) -> None:
        log.warning("image not analysed", path=e.path, reason=reason)
        await self.publish(
            DeadLetter(
                original_topic=ImageWritten.topic,
                original_key=e.request_id,
                original_bytes_b64=base64.b64encode(e.model_dump_json().encode()).decode(),
                reason=reason,
                consumer_group="analyzer",
            ),
            cid,
        )


def locate(data_dir: Path, rel: str) -> Path:
    """Where the image is now: the observer renames ``<x>_active`` folders once they are complete,
    so an event read after that names a folder that has since lost its suffix."""
    path = data_dir / rel
    if path.exists():
        return path
    settled = Path(*[part.removesuffix("_active") for part in Path(rel).parts])
    return data_dir / settled if (data_dir / settled).exists() else path


def _state_of(ra: RequestAnalysis, program: str, alert: AlertInfo | None) -> dict[str, Any]:
    """A request's analysis as JSON: everything ``_analysis_from_state`` needs again."""
    return {
        "request_id": ra.request_id,
        "program": program,
        "images": ra.images,
        "candidates": ra.candidates,
        "reported": {str(k): v for k, v in ra.reported.items()},
        "tracks": [
            {
                "covering_images": t.covering_images,
                "detections": [{**asdict(d), "taken_at": d.taken_at.isoformat()} for d in t.detections],
            }
            for t in ra.tracks
        ],
        "alert": None
        if alert is None
        else {
            "alert_id": alert.alert_id,
            "ivorn": alert.ivorn,
            "circle": None
            if alert.circle is None
            else [alert.circle.ra_deg, alert.circle.dec_deg, alert.circle.radius_deg],
            "trigger_time": alert.trigger_time.isoformat(),
            "is_grb": alert.is_grb,
            "retracted": alert.retracted,
        },
    }


def _analysis_from_state(request_id: str, doc: dict[str, Any]) -> RequestAnalysis:
    tracks = [
        cand.Track(
            [
                cand.Detection(**{**d, "taken_at": datetime.fromisoformat(d["taken_at"])})
                for d in t.get("detections", [])
            ],
            int(t.get("covering_images", 0)),
        )
        for t in doc.get("tracks", [])
    ]
    return RequestAnalysis(
        request_id,
        list(doc.get("images", [])),
        list(doc.get("candidates", [])),
        tracks,
        {int(k): str(v) for k, v in dict(doc.get("reported", {})).items()},
    )


def _alert_from_state(a: dict[str, Any] | None) -> AlertInfo | None:
    if not a:
        return None
    c = a.get("circle")
    return AlertInfo(
        str(a["alert_id"]),
        str(a["ivorn"]),
        None if c is None else cand.ErrorCircle(float(c[0]), float(c[1]), float(c[2])),
        datetime.fromisoformat(a["trigger_time"]),
        bool(a["is_grb"]),
        bool(a.get("retracted", False)),
    )


def _image_summary(e: ImageWritten, res: ImageResult) -> dict[str, Any]:
    return {
        "path": e.path,
        "detector": e.detector,
        "filter": e.filter,
        "taken_at": e.taken_at.isoformat() if e.taken_at else None,
        "calibrations": res.calibrations,
        "problems": res.problems,
        "failure": res.failure,
        "n_sources": res.n_sources,
        "solve_method": res.solve_method,
        "n_matched": res.n_matched,
        "wcs_rms_arcsec": res.wcs_rms_arcsec,
        "zero_point": None if res.zero_point is None else res.zero_point.zp,
        "zero_point_error": None if res.zero_point is None else res.zero_point.error,
        "calibrated_path": res.calibrated_path,
        "catalogue_path": res.catalogue_path,
    }
