"""Consumers of pyros.requests, pyros.system and pyros.device.status.

A handler never raises: a failure is logged (and, for a dispatch, reported failed), so one bad
event cannot stop the consumer.
"""

from __future__ import annotations

import structlog
from pyros_common.contracts import DeviceStatus, Event, ObservationChanged, RequestChanged, SystemChanged

from pyros_observer.devices import DeviceLink
from pyros_observer.executor import Observer

log = structlog.get_logger("pyros.observer")

KEEP = frozenset({"accepted", "changed"})
DROP = frozenset({"cancelled", "rejected", "completed", "failed", "partial"})
# The observatory stops observing: what runs is aborted and reported interrupted.
STOP = frozenset({"paused", "dawn", "closing", "day", "closed", "fault"})
NIGHT_OVER = frozenset({"dawn", "closing", "day", "closed"})  # request folders close: nothing more tonight


class ObserverHandlers:
    def __init__(self, *, observer: Observer, link: DeviceLink) -> None:
        self.observer = observer
        self.link = link

    async def on_request(self, event: Event) -> None:
        """Keep the latest document of every accepted request (routines' only: its sequences have ids)."""
        if not isinstance(event, RequestChanged) or event.producer != "routines":
            return
        try:
            if event.action in KEEP and event.document is not None:
                self.observer.keep_request(
                    event.request_id,
                    owner=event.owner,
                    program=event.program or event.document.program,
                    sequences=list(event.document.sequences),
                )
            elif event.action in DROP:
                await self.observer.request_ended(event.request_id, event.action, event.reason)
        except Exception:
            log.exception("request event not handled", request_id=event.request_id, action=event.action)

    async def on_system(self, event: Event) -> None:
        """A dispatch (running, or dawn for the calibration frames): run it now, interrupting what
        runs; paused, dawn, closing, day without one: abort what runs."""
        if not isinstance(event, SystemChanged):
            return
        d = event.dispatch
        try:
            if d is not None:
                await self.observer.dispatch(
                    d, night=event.night, correlation_id=event.correlation_id or None
                )
            elif event.state in STOP:
                self.observer.night_now(event.night)
                why = f"observatory {event.state}" + (f": {event.reason}" if event.reason else "")
                if event.state in NIGHT_OVER:
                    await self.observer.end_night(why)
                else:
                    await self.observer.stop(why)
            else:
                self.observer.night_now(event.night)
        except Exception as exc:
            log.exception("system event not handled", state=event.state)
            if d is not None:
                try:
                    await self.observer.publish(
                        ObservationChanged(
                            sequence_id=d.sequence_id,
                            request_id=d.request_id,
                            action="failed",
                            reason=f"observer error: {exc!r}",
                            kind=d.kind,
                        ),
                        event.correlation_id or None,
                    )
                except Exception:
                    log.exception("failure not reported", sequence_id=d.sequence_id)

    async def on_status(self, event: Event) -> None:
        if not isinstance(event, DeviceStatus):
            return
        try:
            await self.link.on_status(event)
        except Exception:
            log.exception("device status not handled", device_id=event.device_id)
