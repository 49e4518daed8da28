"""Execution of ONE sequence at a time, as majordome dispatches it.

Slew and settle (unpark first), then the albums in parallel, one camera each, through one shared
``PlanExecutor``: filter, refocus, exposures with dithers. The GFT cameras share one pointing
behind a dichroic, so only one album (VIS, or the first) moves the telescope for its dithers; a
``PointingGate`` keeps the mount still while any camera exposes, and every image's header gets
the pointing in use (offset included). A failed plan is recorded and the next plan goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import structlog
from pyros_common.clock import Clock
from pyros_common.contracts import DeviceStatus, Dispatch, Event, ImageWritten, ObservationChanged
from pyros_common.domain.requests import Plan
from pyros_common.domain.requests import Sequence as RequestSequence

from pyros_observer.devices import CommandFailed, DeviceLink
from pyros_observer.domain import execution as ex
from pyros_observer.domain import layout
from pyros_observer.filing import Filing, FilingError
from pyros_observer.metrics import ObserverMetrics
from pyros_observer.settings import ObserverSettings

log = structlog.get_logger("pyros.observer")

ENDED_KEPT = 10_000  # ended requests remembered, so that a late dispatch of one is refused at once

Publish = Callable[[Event, str | None], Awaitable[None]]
Detector = Literal["VIS", "NIR"]


class PlanFailed(Exception):
    """One plan could not be completed; the message says why."""


class PointingGate:
    """Exposures share the pointing; a telescope move waits for them and holds new ones back."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._exposing = 0
        self._moving = False
        self._waiting_moves = 0

    @contextlib.asynccontextmanager
    async def exposing(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._moving and self._waiting_moves == 0)
            self._exposing += 1
        try:
            yield
        finally:
            async with self._cond:
                self._exposing -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def moving(self) -> AsyncIterator[None]:
        async with self._cond:
            self._waiting_moves += 1
            try:
                await self._cond.wait_for(lambda: not self._moving and self._exposing == 0)
            finally:
                self._waiting_moves -= 1
            self._moving = True
        try:
            yield
        finally:
            async with self._cond:
                self._moving = False
                self._cond.notify_all()


@dataclass(eq=False)
class Run:
    """One dispatched sequence (or calibration) while it runs."""

    dispatch: Dispatch
    night: dt.date
    correlation_id: str | None
    owner: str = ""
    program: str = ""
    sequence: RequestSequence | None = None
    albums: list[ex.AlbumRun] = field(default_factory=list)
    calibration: list[ex.CalibrationPlan] = field(default_factory=list)
    images_planned: int = 0
    images_done: int = 0
    failures: list[ex.PlanFailure] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    album_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    state: ex.SequenceState = "running"
    offset: tuple[float, float] = (0.0, 0.0)  # the telescope's dither offset now [arcsec]
    gate: PointingGate = field(default_factory=PointingGate)

    @property
    def kind(self) -> Literal["sequence", "calibration"]:
        return self.dispatch.kind

    @property
    def request_id(self) -> str:
        return self.dispatch.request_id

    @property
    def sequence_id(self) -> str:
        return self.dispatch.sequence_id


Taken = set[tuple[str, int, int]]  # (album, plan index, frame) already filed


class PlanExecutor:
    """Runs one plan of one album: shared by every album (no copy per camera)."""

    def __init__(
        self,
        *,
        link: DeviceLink,
        filing: Filing,
        settings: ObserverSettings,
        clock: Clock,
        metrics: ObserverMetrics,
        publish: Publish,
        telescope: str,
    ) -> None:
        self.link = link
        self.filing = filing
        self.cfg = settings
        self.clock = clock
        self.metrics = metrics
        self.publish = publish
        self.telescope = telescope
        self._focus_locks: dict[str, asyncio.Lock] = {}
        self.focus_at: dict[str, int] = {}  # focuser -> position we last set

    async def _cmd(
        self, run: Run, device: str, command: str, params: dict[str, Any], timeout_s: float
    ) -> DeviceStatus:
        try:
            return await self.link.run(device, command, params, timeout_s=timeout_s, owner=run)
        except CommandFailed as exc:
            raise PlanFailed(str(exc)) from exc

    async def _refocus(self, run: Run, focuser: str, filter_name: str) -> None:
        """The focuser is shared: one move at a time, and none when it is already there."""
        pos = ex.focus_position(self.cfg.focus_base, self.cfg.focus_offsets, filter_name)
        lock = self._focus_locks.setdefault(focuser, asyncio.Lock())
        async with lock:
            if self.focus_at.get(focuser) == pos:
                return
            self.focus_at.pop(focuser, None)  # unknown until the move has ended
            await self._cmd(run, focuser, "set_focus", {"position": pos}, self.cfg.focus_timeout_s)
            self.focus_at[focuser] = pos

    async def science(self, run: Run, album: ex.AlbumRun, index: int, plan: Plan, taken: Taken) -> None:
        """Filter, focus, then ``count`` exposures; the pointing album applies the dithers."""
        assert run.sequence is not None
        if album.wheel is not None:
            await self._cmd(
                run, album.wheel, "set_filter", {"filter": plan.filter}, self.cfg.filter_timeout_s
            )
        if album.focuser is not None:
            await self._refocus(run, album.focuser, plan.filter)
        target = run.sequence.target
        timeout = ex.exposure_timeout(plan.exposure_s, self.cfg.readout_s, self.cfg.margin_s)
        for k in range(plan.count):
            if (album.album, index, k) in taken:  # a resumed sequence keeps what it has
                continue
            if album.moves_telescope:
                wanted = ex.dither_at(plan, k)
                move = ex.offset_move(run.offset, wanted)
                if move is not None:
                    async with run.gate.moving():
                        await self._cmd(
                            run,
                            self.telescope,
                            "offset",
                            {"dra_arcsec": move[0], "ddec_arcsec": move[1]},
                            self.cfg.offset_timeout_s,
                        )
                        run.offset = wanted
            async with run.gate.exposing():
                offset = run.offset
                ra, dec = ex.offset_pointing(target.ra_deg, target.dec_deg, offset)
                taken_at = self.clock.now()
                status = await self._cmd(
                    run,
                    album.camera,
                    "expose",
                    {
                        "exposure_s": plan.exposure_s,
                        "image_type": "light",
                        "filter": plan.filter,
                        "object": target.name[:68],
                        "ra_deg": ra,
                        "dec_deg": dec,
                        "name": layout.safe_name(f"{album.album}-p{index + 1}-{k:04d}"),
                        "request_id": layout.safe_name(run.request_id),
                        "sequence_id": layout.safe_name(run.sequence_id),
                        "album_id": layout.safe_name(album.album),
                        "plan_id": layout.safe_name(f"plan-{index + 1}-{plan.filter}"),
                        "frame": k,
                    },
                    timeout,
                )
            dest = layout.image_path(
                request_id=run.request_id,
                sequence_id=run.sequence_id,
                album=album.album,
                plan_index=index,
                filter_name=plan.filter,
                frame=k,
            )
            await self._file(
                run,
                status,
                dest,
                album=album.album,
                detector=album.detector,
                plan_index=index,
                filter_name=plan.filter,
                exposure_s=plan.exposure_s,
                frame=k,
                image_type="light",
                taken_at=taken_at,
            )
            taken.add((album.album, index, k))

    async def calibration(
        self, run: Run, detector: Detector, camera: str, index: int, cp: ex.CalibrationPlan
    ) -> None:
        timeout = ex.exposure_timeout(cp.exposure_s, self.cfg.readout_s, self.cfg.margin_s)
        for k in range(cp.count):
            taken_at = self.clock.now()
            status = await self._cmd(
                run,
                camera,
                "expose",
                {
                    "exposure_s": cp.exposure_s,
                    "image_type": cp.image_type,
                    "object": cp.image_type,
                    "name": layout.safe_name(f"{detector}-{cp.image_type}-{k:04d}"),
                    "request_id": layout.safe_name(run.request_id),
                    "sequence_id": layout.safe_name(run.sequence_id),
                    "frame": k,
                },
                timeout,
            )
            dest = layout.calibration_path(
                night=run.night,
                detector=detector,
                image_type=cp.image_type,
                sequence_id=run.sequence_id,
                frame=k,
            )
            await self._file(
                run,
                status,
                dest,
                album=detector,
                detector=detector,
                plan_index=index,
                filter_name="none",
                exposure_s=cp.exposure_s,
                frame=k,
                image_type=cp.image_type,
                taken_at=taken_at,
            )

    async def _file(
        self,
        run: Run,
        status: DeviceStatus,
        dest: Any,
        *,
        album: str,
        detector: Detector,
        plan_index: int,
        filter_name: str,
        exposure_s: float,
        frame: int,
        image_type: Literal["light", "bias", "dark", "flat"],
        taken_at: dt.datetime,
    ) -> None:
        """Move the image into the layout, link it for the GIC, publish ImageWritten then image_taken."""
        written = status.values.get("path")
        if not isinstance(written, str):
            raise PlanFailed(f"{status.device_id} expose reply carries no image path (image missing)")
        try:
            path = self.filing.file_image(written, dest)
            self.filing.link_gic(path)
        except (FilingError, OSError) as exc:
            raise PlanFailed(str(exc)) from exc
        run.images_done += 1
        self.metrics.images.labels(detector).inc()
        await self.publish(
            ImageWritten(
                request_id=run.request_id,
                sequence_id=run.sequence_id,
                album=album,
                plan_index=plan_index,
                detector=detector,
                filter=filter_name,
                exposure_s=exposure_s,
                path=str(path),
                frame=frame,
                image_type=image_type,
                taken_at=taken_at,
            ),
            run.correlation_id,
        )
        await self.publish(
            ObservationChanged(
                sequence_id=run.sequence_id,
                request_id=run.request_id,
                action="image_taken",
                plan_index=plan_index,
                album=album,
                images_done=run.images_done,
                images_planned=run.images_planned,
                kind=run.kind,
            ),
            run.correlation_id,
        )


@dataclass
class KnownRequest:
    owner: str = ""
    program: str = ""
    sequences: dict[str, RequestSequence] = field(default_factory=dict)  # by sequence id


class Observer:
    """The one sequence running now, the accepted requests' sequences, and what ran this night."""

    def __init__(
        self,
        *,
        link: DeviceLink,
        filing: Filing,
        settings: ObserverSettings,
        clock: Clock,
        metrics: ObserverMetrics,
        publish: Publish,
        lon_deg: float,
    ) -> None:
        self.link = link
        self.filing = filing
        self.cfg = settings
        self.clock = clock
        self.metrics = metrics
        self.publish = publish
        self.lon_deg = lon_deg
        self.plans = PlanExecutor(
            link=link,
            filing=filing,
            settings=settings,
            clock=clock,
            metrics=metrics,
            publish=publish,
            telescope=settings.telescope,
        )
        self.requests: dict[str, KnownRequest] = {}
        # Requests that ended (cancelled, rejected, ...) and why: a dispatch of one is refused at
        # once instead of waiting for a document that will never come. Bounded, oldest out first.
        self.ended: dict[str, str] = {}
        self.owners: dict[str, tuple[str, str]] = {}  # request -> (owner, program), kept after it ends
        self.current: Run | None = None
        self.night: dt.date | None = None
        self.claimed: set[tuple[dt.date, str]] = set()  # (night, sequence) running or ended
        self.states: dict[str, ex.SequenceState] = {}
        self.taken: dict[str, Taken] = {}
        self._closing: set[str] = set()  # requests to close once their running sequence ends
        self._lock = asyncio.Lock()
        link.on_health(self.on_health)

    # --- requests -----------------------------------------------------------------------

    def sequence_of(self, sequence_id: str) -> tuple[str, KnownRequest, RequestSequence] | None:
        for rid, known in self.requests.items():
            seq = known.sequences.get(sequence_id)
            if seq is not None:
                return rid, known, seq
        return None

    def keep_request(
        self, request_id: str, *, owner: str, program: str, sequences: list[RequestSequence]
    ) -> None:
        self._know(request_id, owner=owner, program=program, sequences=sequences)
        # On disk too: a restarted observer takes the request up again at its next dispatch
        # (routines does not announce the accepted requests again).
        try:
            self.filing.keep_known(
                request_id,
                {
                    "owner": owner,
                    "program": program,
                    "sequences": [s.model_dump(mode="json") for s in sequences if s.id],
                },
            )
        except OSError:
            log.exception("request not remembered on disk", request_id=request_id)

    def _know(self, request_id: str, *, owner: str, program: str, sequences: list[RequestSequence]) -> None:
        known = KnownRequest(owner=owner, program=program, sequences={s.id: s for s in sequences if s.id})
        self.requests[request_id] = known
        self.ended.pop(request_id, None)
        before = self.owners.get(request_id)
        self.owners[request_id] = (owner, program)
        if before is not None and before != (owner, program):
            try:
                self.filing.update_owner(request_id, owner=owner, program=program)
            except OSError:
                log.exception("request manifest not updated", request_id=request_id)

    def _recall(self, request_id: str) -> None:
        """A request accepted before this process started: as ``keep_request`` left it on disk."""
        if request_id in self.requests or request_id in self.ended:
            return
        try:
            body = self.filing.known(request_id)
            if body is None:
                return
            sequences = [RequestSequence.model_validate(x) for x in body.get("sequences", [])]
        except (OSError, ValueError):
            log.exception("remembered request not read", request_id=request_id)
            return
        self._know(
            request_id,
            owner=str(body.get("owner", "")),
            program=str(body.get("program", "")),
            sequences=sequences,
        )
        log.info("request taken up again from disk", request_id=request_id, sequences=len(sequences))

    async def request_ended(self, request_id: str, action: str, reason: str) -> None:
        self.requests.pop(request_id, None)
        try:
            self.filing.forget_known(request_id)
        except OSError:
            log.exception("remembered request not removed", request_id=request_id)
        self.ended.pop(request_id, None)
        self.ended[request_id] = action
        while len(self.ended) > ENDED_KEPT:
            del self.ended[next(iter(self.ended))]
        run = self.current
        if action == "cancelled" and run is not None and run.request_id == request_id:
            await self.interrupt(f"request {request_id} cancelled" + (f": {reason}" if reason else ""))
        self._close_request(request_id)

    def _close_request(self, request_id: str) -> None:
        run = self.current
        if run is not None and run.request_id == request_id and run.state == "running":
            self._closing.add(request_id)
            return
        self._closing.discard(request_id)
        try:
            self.filing.close_request(request_id)
        except OSError:
            log.exception("request folder not closed", request_id=request_id)

    # --- health -------------------------------------------------------------------------

    def on_health(self, status: DeviceStatus) -> None:
        """A camera offline or in error: its albums are dropped, the other camera goes on."""
        run = self.current
        if run is None or run.state != "running" or status.state not in ("offline", "error"):
            return
        why = self.link.unhealthy(status.device_id) or f"{status.device_id} {status.state}"
        for a in run.albums:
            if a.camera == status.device_id and a.album not in run.dropped:
                self._drop(run, a.album, a.detector, why)
        if run.kind == "calibration":
            for det, cam in self.cfg.cameras.items():
                if cam == status.device_id and det not in run.dropped:
                    self._drop(run, det, det, why)

    def _drop(self, run: Run, album: str, detector: str, why: str) -> None:
        log.warning("album dropped", sequence_id=run.sequence_id, album=album, reason=why)
        run.dropped[album] = why
        self.metrics.albums_dropped.labels(detector).inc()
        task = run.album_tasks.get(album)
        if task is not None and not task.done():
            task.cancel()

    # --- dispatch -----------------------------------------------------------------------

    def night_now(self, night: dt.date | None) -> dt.date:
        if night is not None:
            self.night = night
        return self.night or layout.night_of(self.clock.now(), self.lon_deg)

    async def dispatch(self, d: Dispatch, *, night: dt.date | None, correlation_id: str | None) -> None:
        """Run ``d`` now, interrupting whatever runs; a duplicate (running or ended tonight) is ignored."""
        # The accepted document comes on pyros.requests, the dispatch on pyros.system: two
        # consumers, so the dispatch may arrive first. Wait a little for the document.
        if d.kind == "sequence" and self.sequence_of(d.sequence_id) is None:
            self._recall(d.request_id)
        waited = 0.0
        while (
            d.kind == "sequence"
            and self.sequence_of(d.sequence_id) is None
            and d.request_id not in self.ended
            and waited < self.cfg.document_wait_s
        ):
            await self.clock.sleep(0.05)
            waited += 0.05
        async with self._lock:
            the_night = self.night_now(night)
            key = (the_night, d.sequence_id)
            if key in self.claimed or self.states.get(d.sequence_id) == "completed":
                log.info("duplicate dispatch ignored", sequence_id=d.sequence_id, night=str(the_night))
                return
            run = Run(dispatch=d, night=the_night, correlation_id=correlation_id)
            error = self._prepare(run)
            if self.current is not None:
                old = self.current
                why = f"preempted by {d.sequence_id}"
                if d.preempts and d.preempts == old.sequence_id:
                    why += " (an alert)"
                await self._interrupt(old, why)
            if error is not None:
                await self._fail_at_once(run, error)
                return
            self.claimed.add(key)
            self.current = run
            self.states[run.sequence_id] = ex.transition(self.states.get(run.sequence_id), "running")
            body = self._sequence(run) if run.kind == "sequence" else self._calibration(run)
            run.task = asyncio.create_task(body, name=f"observe-{run.sequence_id}")

    def _prepare(self, run: Run) -> str | None:
        """Fill ``run`` from the request it belongs to; the reason it cannot run, if any."""
        d = run.dispatch
        if d.kind == "calibration":
            try:
                run.calibration = ex.calibration_plans(
                    d.frames, dark_s=self.cfg.dark_exposure_s, flat_s=self.cfg.flat_exposure_s
                )
            except ValueError as exc:
                return str(exc)
            run.images_planned = sum(c.count for c in run.calibration) * len(self.cfg.cameras)
            return None
        found = self.sequence_of(d.sequence_id)
        if found is None:
            if d.request_id in self.ended:
                return f"request {d.request_id} is {self.ended[d.request_id]}"
            return f"no accepted request carries sequence {d.sequence_id}"
        rid, known, seq = found
        if rid != d.request_id:
            log.warning("dispatch names another request", dispatched=d.request_id, known=rid)
        run.sequence, run.owner, run.program = seq, known.owner, known.program
        try:
            run.albums = ex.album_runs(
                seq,
                cameras=self.cfg.cameras,
                wheels=self.cfg.filterwheels,
                focusers=self.cfg.focusers,
                pointing_detector=self.cfg.pointing_detector,
            )
        except KeyError as exc:
            return str(exc.args[0])
        run.images_planned = ex.images_planned(run.albums)
        run.images_done = len(self.taken.get(d.sequence_id, set()))
        return None

    async def _fail_at_once(self, run: Run, reason: str) -> None:
        log.warning("dispatch refused", sequence_id=run.sequence_id, reason=reason)
        self.metrics.sequences.labels(run.kind, "failed").inc()
        await self._observation(run, "failed", reason=reason)

    async def stop(self, reason: str) -> None:
        """Abort what runs (pause, dawn, closing, day) and report it interrupted."""
        async with self._lock:
            if self.current is not None:
                await self._interrupt(self.current, reason)

    async def end_night(self, reason: str) -> None:
        """Abort what runs; every request folder still running closes (a later sequence reopens it)."""
        async with self._lock:
            if self.current is not None:
                await self._interrupt(self.current, reason)
            keep = {self.current.request_id} if self.current is not None else set()
            try:
                self.filing.close_requests(keep=keep)
            except OSError:
                log.exception("request folders not closed at the end of the night")

    async def interrupt(self, reason: str) -> None:
        await self.stop(reason)

    async def _interrupt(self, run: Run, reason: str) -> None:
        if run.state != "running":  # it has just ended on its own
            if run.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await run.task
            return
        devices = self.link.outstanding(run)
        run.state = "interrupted"
        if run.task is not None:
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run.task
        for device in devices:
            await self.link.fire(device, "abort")
        self.claimed.discard((run.night, run.sequence_id))  # it may be dispatched again: it resumes
        self.states[run.sequence_id] = ex.transition(self.states.get(run.sequence_id), "interrupted")
        if self.current is run:
            self.current = None
        self._close_sequence(run)
        self.metrics.sequences.labels(run.kind, "interrupted").inc()
        log.info("sequence interrupted", sequence_id=run.sequence_id, reason=reason, aborted=devices)
        await self._observation(run, "interrupted", reason=reason)

    # --- execution ----------------------------------------------------------------------

    async def _sequence(self, run: Run) -> None:
        try:
            self.filing.open_sequence(run.request_id, run.sequence_id, owner=run.owner, program=run.program)
            # "started" goes out while the slew command does: the slew is on an alert's path to
            # the sky, the announcement is not. It is awaited before anything else is reported.
            started = asyncio.create_task(self._observation(run, "started"))
            try:
                for a in run.albums:
                    why = self.link.unhealthy(a.camera)
                    if why is not None:
                        self._drop(run, a.album, a.detector, why)
                pointing: str | None = None
                if any(a.album not in run.dropped for a in run.albums):
                    try:
                        await self._point(run)
                    except CommandFailed as exc:
                        pointing = f"pointing failed: {exc}"
            finally:
                await started
            if pointing is not None:
                await self._end(run, "failed", pointing)
                return
            taken = self.taken.setdefault(run.sequence_id, set())
            run.album_tasks = {
                a.album: asyncio.create_task(self._album(run, a, taken), name=f"album-{a.album}")
                for a in run.albums
                if a.album not in run.dropped
            }
            if run.album_tasks:
                await asyncio.gather(*run.album_tasks.values(), return_exceptions=True)
            state, reason = ex.outcome(
                images_done=run.images_done, failures=run.failures, dropped=run.dropped
            )
            await self._end(run, state, reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave a sequence without an end
            log.exception("sequence crashed", sequence_id=run.sequence_id)
            await self._end(run, "failed", f"observer error: {exc!r}")

    async def _point(self, run: Run) -> None:
        """Unpark if the mount is (or may be) parked, then slew; the slew ends settled."""
        assert run.sequence is not None
        tel = self.cfg.telescope
        last = self.link.last.get(tel)  # majordome may have parked it since its last periodic status
        if last is None or last.state == "parked" or last.values.get("parked") is True:
            await self.link.run(tel, "unpark", {}, timeout_s=self.cfg.unpark_timeout_s, owner=run)
        t = run.sequence.target
        await self.link.run(
            tel,
            "slew",
            {"ra_deg": t.ra_deg, "dec_deg": t.dec_deg},
            timeout_s=self.cfg.slew_timeout_s,
            owner=run,
        )
        run.offset = (0.0, 0.0)

    async def _album(self, run: Run, album: ex.AlbumRun, taken: Taken) -> None:
        for index, plan in enumerate(album.plans):
            if album.album in run.dropped:
                return
            try:
                await self.plans.science(run, album, index, plan, taken)
            except PlanFailed as exc:
                self._plan_failed(run, album.album, index, plan.filter, str(exc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("plan crashed", sequence_id=run.sequence_id, album=album.album)
                self._plan_failed(run, album.album, index, plan.filter, f"observer error: {exc!r}")

    def _plan_failed(self, run: Run, album: str, index: int, filter_name: str, reason: str) -> None:
        log.warning("plan failed", sequence_id=run.sequence_id, album=album, plan=index, reason=reason)
        run.failures.append(ex.PlanFailure(album, index, filter_name, reason))
        self.metrics.plan_failures.labels(ex.reason_label(reason)).inc()

    async def _calibration(self, run: Run) -> None:
        try:
            await self._observation(run, "started")
            for det in self.cfg.cameras:
                why = self.link.unhealthy(self.cfg.cameras[det])
                if why is not None:
                    self._drop(run, det, det, why)
            run.album_tasks = {
                det: asyncio.create_task(
                    self._calibrate(run, cast(Detector, det), cam), name=f"calibration-{det}"
                )
                for det, cam in self.cfg.cameras.items()
                if det not in run.dropped
            }
            if run.album_tasks:
                await asyncio.gather(*run.album_tasks.values(), return_exceptions=True)
            state, reason = ex.outcome(
                images_done=run.images_done, failures=run.failures, dropped=run.dropped
            )
            await self._end(run, state, reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("calibration crashed", sequence_id=run.sequence_id)
            await self._end(run, "failed", f"observer error: {exc!r}")

    async def _calibrate(self, run: Run, detector: Detector, camera: str) -> None:
        for index, cp in enumerate(run.calibration):
            if detector in run.dropped:
                return
            try:
                await self.plans.calibration(run, detector, camera, index, cp)
            except PlanFailed as exc:
                self._plan_failed(run, detector, index, cp.image_type, str(exc))

    async def _end(self, run: Run, state: Literal["completed", "failed"], reason: str) -> None:
        if run.state != "running":
            return
        run.state = state  # before any await: an interruption now leaves it be
        self.states[run.sequence_id] = ex.transition(self.states.get(run.sequence_id), state)
        if self.current is run:
            self.current = None
        self._close_sequence(run)
        self.metrics.sequences.labels(run.kind, state).inc()
        log.info("sequence ended", sequence_id=run.sequence_id, outcome=state, reason=reason)
        await self._observation(run, state, reason=reason)
        if run.kind == "sequence":
            self._maybe_close_request(run.request_id)

    def _close_sequence(self, run: Run) -> None:
        if run.kind != "sequence":
            return
        try:
            self.filing.close_sequence(run.request_id, run.sequence_id)
        except OSError:
            log.exception("sequence folder not closed", sequence_id=run.sequence_id)
        if run.request_id in self._closing:
            self._close_request(run.request_id)

    def _maybe_close_request(self, request_id: str) -> None:
        """Every known sequence of the request has ended: the request's folder is complete."""
        known = self.requests.get(request_id)
        if known is None or not known.sequences:
            return
        if all(self.states.get(sid) in ex.ENDED for sid in known.sequences):
            self._close_request(request_id)

    async def _observation(
        self, run: Run, action: Literal["started", "completed", "interrupted", "failed"], *, reason: str = ""
    ) -> None:
        await self.publish(
            ObservationChanged(
                sequence_id=run.sequence_id,
                request_id=run.request_id,
                action=action,
                reason=reason,
                images_done=run.images_done,
                images_planned=run.images_planned,
                kind=run.kind,
            ),
            run.correlation_id,
        )

    async def shutdown(self) -> None:
        """Service stop: abort what runs and report it interrupted."""
        await self.stop("observer stopping")
