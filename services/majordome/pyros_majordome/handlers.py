"""majordome's night: the loop on the clock and the consumers that wake it.

Everything it decides is published on ``pyros.system`` with the reason; what it asks of the
devices goes on ``pyros.device.commands``. The observer runs what it dispatches; the
scheduler replans when it says ``replan``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pyros_common.contracts import (
    ConditionsChanged,
    DeviceCommand,
    DeviceStatus,
    Dispatch,
    Event,
    ObservationChanged,
    ScheduleChanged,
    SystemChanged,
)
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import ServiceContext

from pyros_majordome.domain.dispatch import Planned, blocking_failures, next_start, next_to_run
from pyros_majordome.domain.night import NightState, transition
from pyros_majordome.settings import MajordomeSettings

log = structlog.get_logger("pyros.majordome")

Publish = Callable[..., Awaitable[None]]
N = NightState


@dataclass
class Pause:
    start: dt.datetime
    reason: str
    end: dt.datetime | None = None


@dataclass
class NightLog:
    """What happened tonight, for the API and the night report."""

    states: list[tuple[dt.datetime, str, str]] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    dispatched: list[tuple[dt.datetime, str, str | None]] = field(default_factory=list)


class Night:
    """The night state machine on the clock (see ``domain.night``)."""

    def __init__(self, *, ctx: ServiceContext, settings: MajordomeSettings, publish: Publish) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.cfg = settings
        self._publish = publish
        self.site = get_site(ctx.settings.site)
        self.telescope_id = ctx.settings.telescope_id
        self.state = N.DAY
        self.night: dt.date | None = None
        self.plan: list[Planned] = []
        self.version = 0
        self.running: str | None = None
        self.finished: set[str] = set()
        # Interrupted since the last plan (cancelled, preempted, paused): not dispatched again
        # until a new schedule version says where it goes, if anywhere.
        self.held: set[str] = set()
        self.devices: dict[str, tuple[str, str]] = {}
        self.safe: bool | None = None
        self.log = NightLog()
        self._wake = asyncio.Event()
        self._calibrated = asyncio.Event()
        self._lock = asyncio.Lock()

    # --- publishing -----------------------------------------------------------------------

    async def _system(
        self, target: NightState, reason: str, *, dispatch: Dispatch | None = None, replan: bool = False
    ) -> None:
        if target != self.state:
            self.state = transition(self.state, target)
            self.log.states.append((self.clock.now(), target.value, reason))
            log.info("night state", state=target.value, reason=reason, night=str(self.night))
        await self._publish(
            SystemChanged(
                state=target.value, reason=reason, night=self.night, dispatch=dispatch, replan=replan
            )
        )

    async def _command(self, device: str, command: str, **params: Any) -> None:
        await self._publish(DeviceCommand(device_id=device, command=command, params=params))

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Day, dusk, the night, dawn, closing; again the next day. Never returns."""
        from pyros_common.domain.sky.night import night_bounds, tonight

        while True:
            now = self.clock.now()
            night = tonight(self.site, now)
            dusk, dawn = night_bounds(self.site, night)
            if now < dusk:
                await self._wait_until(dusk, wake=False)
                continue
            try:
                await self._observe(night, dusk, dawn)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("night loop failed; closing for safety")
                with contextlib.suppress(Exception):
                    await self._close_up()
                await self._wait_until(dawn + dt.timedelta(seconds=60), wake=False)

    async def _observe(self, night: dt.date, dusk: dt.datetime, dawn: dt.datetime) -> None:
        self.night = night
        self.finished.clear()
        self.held.clear()
        self.log = NightLog()
        await self._system(
            N.DUSK, f"night {night} starts (Sun at {self.site.night_sun_altitude_deg:g}°)", replan=True
        )
        why = self._not_ok()
        if why is None:
            await self._open_up()
            await self._system(N.RUNNING, "dome opened: safe and every blocking device up")
        else:
            await self._pause(why)
        while self.clock.now() < dawn:
            async with self._lock:
                await self._step()
            now = self.clock.now()
            nxt = next_start(self.plan, now=now, finished=self.finished | self.held)
            until = dawn if nxt is None or self.running is not None else min(max(nxt, now), dawn)
            await self._wait_until(until)
        await self._dawn()

    async def _step(self) -> None:
        why = self._not_ok()
        if self.state is N.RUNNING and why is not None:
            await self._pause(why)
        elif self.state is N.PAUSED and why is None:
            await self._resume()
        if self.state is N.RUNNING:
            p = next_to_run(
                self.plan, now=self.clock.now(), running=self.running, finished=self.finished | self.held
            )
            if p is not None:
                await self._dispatch(p)

    async def _dispatch(self, p: Planned, preempts: str | None = None) -> None:
        self.running = p.sequence_id
        self.log.dispatched.append((self.clock.now(), p.sequence_id, preempts))
        d = Dispatch(
            kind="sequence",
            request_id=p.request_id,
            sequence_id=p.sequence_id,
            planned_start=p.start,
            planned_end=p.end,
            schedule_version=self.version,
            preempts=preempts,
        )
        why = f"dispatch {p.sequence_id}" + (f", interrupting {preempts}" if preempts else "")
        await self._system(N.RUNNING, why, dispatch=d)

    async def _pause(self, why: str) -> None:
        self.log.pauses.append(Pause(self.clock.now(), why))
        self.running = None
        await self._system(N.PAUSED, why)
        await self._close_up()

    async def _open_up(self) -> None:
        """Open the dome and unpark the mount: ready at once, so that an alert's first command is
        its slew (an unpark on its path cost it 5 s of night time)."""
        await self._command(self.cfg.dome, "dome", action="open")
        await self._command(self.cfg.telescope, "unpark")

    async def _close_up(self) -> None:
        for cam in self.cfg.cameras:
            await self._command(cam, "abort")
        await self._command(self.cfg.telescope, "park")
        await self._command(self.cfg.dome, "dome", action="close")

    async def _resume(self) -> None:
        if self.log.pauses and self.log.pauses[-1].end is None:
            self.log.pauses[-1].end = self.clock.now()
        await self._open_up()
        await self._system(N.RUNNING, "resumed: safe and every blocking device up", replan=True)

    async def _dawn(self) -> None:
        self.running = None
        if self.log.pauses and self.log.pauses[-1].end is None:
            self.log.pauses[-1].end = self.clock.now()
        await self._system(N.DAWN, "night over: parking and closing, then calibration frames")
        await self._close_up()
        self._calibrated.clear()
        now = self.clock.now()
        calib = Dispatch(
            kind="calibration",
            request_id=f"calibration-{self.night}",
            sequence_id=f"calibration-{self.night}",
            planned_start=now,
            planned_end=now + dt.timedelta(seconds=self.cfg.calibration_timeout_s),
            frames=dict(self.cfg.calibration_frames),
        )
        await self._system(N.DAWN, "calibration frames (bias, dark)", dispatch=calib)
        if not await self._wait_event(self._calibrated, self.cfg.calibration_timeout_s):
            log.warning("calibration frames not reported in time", timeout_s=self.cfg.calibration_timeout_s)
        await self._system(N.CLOSING, "checking that the dome and the telescope are closed")
        for dev in (self.cfg.dome, self.cfg.telescope):
            await self._command(dev, "status")
        closed = await self._wait_closed(self.cfg.close_check_timeout_s)
        await self._system(N.DAY, closed, replan=True)

    def _closed(self) -> str | None:
        """None when the dome is closed and the mount parked, else what is not."""
        dome = self.devices.get(self.cfg.dome, ("unknown", ""))[0]
        mount = self.devices.get(self.cfg.telescope, ("unknown", ""))[0]
        bad = []
        if mount != "parked":
            bad.append(f"telescope {mount}")
        if self._dome_open is not False:
            bad.append(f"dome {'open' if self._dome_open else dome}")
        return ", ".join(bad) or None

    async def _wait_closed(self, timeout_s: float) -> str:
        deadline = self.clock.now() + dt.timedelta(seconds=timeout_s)
        while True:
            bad = self._closed()
            if bad is None:
                return "day: dome closed and telescope parked"
            if self.clock.now() >= deadline:
                log.error("not closed at the end of the night", what=bad)
                return f"day: NOT CLOSED after {timeout_s:g} s: {bad}"
            await self._wait_until(min(deadline, self.clock.now() + dt.timedelta(seconds=10)))

    # --- waiting ----------------------------------------------------------------------------

    async def _wait_until(self, when: dt.datetime, *, wake: bool = True) -> None:
        seconds = (when - self.clock.now()).total_seconds()
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if not wake:
            await self.clock.sleep(seconds)
            return
        await self._wait_event(self._wake, seconds)
        self._wake.clear()

    async def _wait_event(self, event: asyncio.Event, seconds: float) -> bool:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waiter = asyncio.ensure_future(event.wait())
        try:
            done, _ = await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, waiter):
                t.cancel()
        return waiter in done

    # --- health -----------------------------------------------------------------------------

    _dome_open: bool | None = None

    def _not_ok(self) -> str | None:
        """Why observing must not go on now, or None."""
        failures = blocking_failures(self.devices, self.cfg.blocking_devices)
        if failures:
            return "blocking device down: " + "; ".join(failures)
        if self.safe is False:
            return f"unsafe conditions: {self._unsafe_reason or 'monitoring says unsafe'}"
        if self.safe is None and not self.cfg.assume_safe_without_conditions:
            return "no verdict from monitoring yet (unknown is not safe)"
        return None

    _unsafe_reason: str = ""

    # --- consumers --------------------------------------------------------------------------

    async def on_schedule(self, event: Event) -> None:
        assert isinstance(event, ScheduleChanged)
        if event.telescope_id != self.telescope_id:
            return
        async with self._lock:
            self.version = event.version
            self.held.clear()
            self.plan = [Planned(s.request_id, s.sequence_id, s.start, s.end) for s in event.scheduled]
            interrupted = event.interrupted
            if (
                interrupted is not None
                and interrupted == self.running
                and self.state is N.RUNNING
                and self.night == event.night
            ):
                # The new plan puts another sequence (an alert) first: abort at once, start it.
                p = next_to_run(
                    self.plan,
                    now=self.clock.now(),
                    running=None,
                    finished=self.finished | self.held | {interrupted},
                )
                if p is not None:
                    await self._dispatch(p, preempts=interrupted)
        self._wake.set()

    async def on_observation(self, event: Event) -> None:
        assert isinstance(event, ObservationChanged)
        if event.kind == "calibration":
            if event.action in ("completed", "failed", "interrupted"):
                self._calibrated.set()
            return
        if event.action in ("completed", "failed"):
            self.finished.add(event.sequence_id)
        elif event.action == "interrupted":
            self.held.add(event.sequence_id)
        if event.action in ("completed", "failed", "interrupted") and event.sequence_id == self.running:
            self.running = None
            self._wake.set()

    async def on_device(self, event: Event) -> None:
        assert isinstance(event, DeviceStatus)
        before = self.devices.get(event.device_id)
        self.devices[event.device_id] = (event.state, event.error if not event.ok else "")
        if event.device_id == self.cfg.dome:
            shutter = event.values.get("shutter")
            if isinstance(shutter, str):
                self._dome_open = shutter.lower() != "closed"  # opening/closing count as open
            elif "open" in event.values:
                self._dome_open = bool(event.values["open"])
        if before is None or before[0] != event.state:
            self._wake.set()

    async def on_conditions(self, event: Event) -> None:
        assert isinstance(event, ConditionsChanged)
        if event.site_id not in (self.site.name, self.ctx.settings.site):
            return
        changed = self.safe is not event.safe
        self.safe = event.safe
        self._unsafe_reason = event.reason
        if changed:
            self._wake.set()

    # --- view -------------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        return {
            "telescope": self.telescope_id,
            "state": self.state.value,
            "night": None if self.night is None else self.night.isoformat(),
            "running": self.running,
            "schedule_version": self.version,
            "finished": sorted(self.finished),
            "conditions_safe": self.safe,
            "devices": {d: {"state": s, "error": e} for d, (s, e) in sorted(self.devices.items())},
            "pauses": [
                {
                    "start": p.start.isoformat(),
                    "end": None if p.end is None else p.end.isoformat(),
                    "reason": p.reason,
                }
                for p in self.log.pauses
            ],
            "states": [{"at": t.isoformat(), "state": s, "reason": r} for t, s, r in self.log.states],
        }
