"""monitoring's consumers and its tick: device health, the weather vote, the site's status.

Weather sources are the devices of kind ``weather`` and ``plc`` on ``pyros.device.status`` (the
PLC, the station, the cloud sensor, INDI weather devices) and, when set, a site weather
station's JSON file. A new verdict, or a new health summary, goes to ``pyros.conditions``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog
from pyros_common.contracts import (
    AlertChanged,
    ConditionsChanged,
    ConditionVote,
    DeviceStatus,
    Event,
    HealthSummary,
    ScheduleChanged,
    SystemChanged,
)
from pyros_common.runtime.service import ServiceContext

from pyros_monitoring.domain.health import DeviceReport, Health, assess, summarise
from pyros_monitoring.domain.weather import Verdict, WeatherVote, quantities_from_values
from pyros_monitoring.metrics import MonitoringMetrics, reason_label
from pyros_monitoring.settings import MonitoringSettings
from pyros_monitoring.store import Store

log = structlog.get_logger("pyros.monitoring")
Publish = Callable[..., Awaitable[None]]
WEATHER_KINDS = frozenset({"weather", "plc"})
FILE_SOURCE = "station-file"
FLUSH_AT = 200  # queued device changes that trigger a write before the tick
EXCLUSIONS_POLL_S = 15.0  # how often the operators' exclusions are read from the database [s]


def verdict_doc(v: Verdict) -> dict[str, Any]:
    """The verdict as JSON (the database row and the API)."""
    return {
        "at": v.at.isoformat(),
        "safe": v.safe,
        "safe_now": v.safe_now,
        "sky": v.sky,
        "reason": v.reason,
        "reopen_at": None if v.reopen_at is None else v.reopen_at.isoformat(),
        "quantities": {
            q.quantity: {
                "value": q.value,
                "voters": list(q.voters),
                "unsafe": q.unsafe,
                "reason": q.reason,
                "pending": list(q.pending),
            }
            for q in v.quantities
        },
        "sources": [
            {
                "source": s.source,
                "measures": list(s.measures),
                "values": dict(s.values),
                "last_at": None if s.last_at is None else s.last_at.isoformat(),
                "age_s": None if s.age_s is None else round(s.age_s, 1),
                "weight": s.weight,
                "fresh": s.fresh,
                "suspect": s.suspect,
                "excluded": s.excluded,
                "safe": s.safe,
                "reason": s.reason,
            }
            for s in v.sources
        ],
    }


def _news(before: DeviceReport | None, event: DeviceStatus) -> bool:
    """Whether ``event`` changes what is known of its device (state, health, error or kind)."""
    return (
        before is None
        or before.state != event.state
        or before.ok != event.ok
        or before.error != event.error
        or before.kind != event.kind
    )


@dataclass
class _Pending:
    at: dt.datetime
    request_id: str


class Monitor:
    """The state monitoring keeps in memory; the database has its copy (``Store``)."""

    def __init__(
        self,
        *,
        ctx: ServiceContext,
        settings: MonitoringSettings,
        store: Store,
        metrics: MonitoringMetrics,
        publish: Publish,
        site_id: str,
    ) -> None:
        self.ctx = ctx
        self.clock = ctx.clock
        self.cfg = settings
        self.store = store
        self.metrics = metrics
        self._publish = publish
        self.site_id = site_id
        self.telescope_id = ctx.settings.telescope_id
        self.blocking = settings.blocking(ctx.settings.site)
        self.vote = WeatherVote(settings.vote_config())
        self.reports: dict[str, DeviceReport] = {}
        self._changes: list[tuple[DeviceReport, dict[str, Any]]] = []  # not yet in the database
        self._latest: dict[str, tuple[dt.datetime, DeviceStatus]] = {}  # since the last flush
        self._seen_at: dict[str, dt.datetime] = {}
        self._persisted_at: dict[str, dt.datetime] = {}  # last_seen as the database has it
        self._exclusions_read_at: dt.datetime | None = None
        self._published: tuple[Any, ...] | None = None
        self._published_at: dt.datetime | None = None
        self._verdict: Verdict | None = None
        self._health: HealthSummary | None = None
        self._alerts: dict[str, _Pending] = {}  # request id -> alert seen
        self._running_request: str | None = None
        self._file_mtime: float | None = None
        self._schedule_labels: dict[str, set[tuple[str, str, str]]] = {}
        self._fed: dict[str, tuple[Mapping[str, object], dt.datetime]] = {}  # weather readings last observed
        self._temperature_gauges: dict[str, Any] = {}

    def load(self) -> None:
        """At start: the devices and the vote's memory as the database has them."""
        self.reports = self.store.load_devices()
        memory = self.store.load_memory(self.site_id)
        if memory is not None:
            self.vote = WeatherVote(self.cfg.vote_config(), memory)
        self.metrics.declare(site=self.site_id, telescope=self.telescope_id)

    # --- consumers ---------------------------------------------------------------------------

    async def on_device(self, event: Event) -> None:
        """Cheap for the periodic statuses (memory only); a change of state, health or error is
        queued for the database (written at the tick, or at once past ``FLUSH_AT`` changes)."""
        assert isinstance(event, DeviceStatus)
        self.metrics.status_events.inc()
        now = self.clock.now()
        d = event.device_id
        if _news(self.reports.get(d), event):
            self._changed(event, now)
            if len(self._changes) >= FLUSH_AT:
                self.flush()
        self._latest[d] = (now, event)
        if event.temperature_c is not None:
            self._temperature(d).set(event.temperature_c)
        if event.kind in WEATHER_KINDS and event.ok and event.state not in ("offline", "error"):
            at = min(event.sent_at, now) if event.producer else now
            values = quantities_from_values(event.values)
            last = self._fed.get(d)
            if last is None or at >= last[1]:
                self._fed[d] = (event.values, at)
            if values and self.vote.observe(d, at, values):
                await self.evaluate()  # a claim started or ended: at once (two claims act at once)

    async def on_devices(self, events: Sequence[Event]) -> None:
        """``on_device`` for every status of one poll, in order, with the same effect, and done
        when it returns (the bus commits the batch's offsets after it):

        - every change of state, health or error is in the database with its history row;
        - a weather source's readings reach the vote, but a run of equal ones (each within the
          vote's ``max_age_s`` of the previous) only as its first and its latest: the readings
          in between would only move the source's time. A reading that starts or ends a claim,
          or comes back from silence, is evaluated at once, as one by one;
        - the periodic statuses are memory only, the latest per device (``last_seen``, written
          at the tick; after a crash the next statuses bring it back).
        """
        now = self.clock.now()
        self.metrics.status_events.inc(len(events))
        reports = self.reports
        fed = self._fed
        max_age_s = self.vote.config.max_age_s
        held: dict[str, dt.datetime] = {}  # source -> latest time of readings equal to its fed ones
        temperatures: dict[str, float] = {}
        for event in events:
            assert isinstance(event, DeviceStatus)
            d = event.device_id
            if _news(reports.get(d), event):
                self._changed(event, now)
            self._latest[d] = (now, event)  # not a local: the tick's flush swaps the dict
            if event.temperature_c is not None:
                temperatures[d] = event.temperature_c
            if event.kind in WEATHER_KINDS and event.ok and event.state not in ("offline", "error"):
                at = min(event.sent_at, now) if event.producer else now
                last = fed.get(d)
                if last is not None and last[0] == event.values:
                    previous = held.get(d, last[1])
                    if at >= previous and (at - previous).total_seconds() <= max_age_s:
                        held[d] = at
                        continue
                if d in held:  # the run of equal readings ends: its latest first
                    self._feed(d, held.pop(d))
                    last = fed[d]
                if last is None or at >= last[1]:  # (an older reading is observed, never held)
                    fed[d] = (event.values, at)
                values = quantities_from_values(event.values)
                if values and self.vote.observe(d, at, values):
                    for source, t in held.items():  # the other sources as one by one would have them
                        self._feed(source, t)
                    held.clear()
                    await self.evaluate()
        for source, t in held.items():
            self._feed(source, t)
        for d, temperature in temperatures.items():
            self._temperature(d).set(temperature)
        self._write_changes()

    def _feed(self, source: str, at: dt.datetime) -> None:
        """A source's last readings again, at ``at``: the latest of a run of equal readings. Not
        news for the vote (its readings are unchanged and each came within ``max_age_s``)."""
        values, _ = self._fed[source]
        self._fed[source] = (values, at)
        quantities = quantities_from_values(values)
        if quantities:
            self.vote.observe(source, at, quantities)

    def _temperature(self, device_id: str) -> Any:
        g = self._temperature_gauges.get(device_id)
        if g is None:
            g = self._temperature_gauges[device_id] = self.metrics.device_temperature.labels(device_id)
        return g

    def _changed(self, event: DeviceStatus, now: dt.datetime) -> None:
        """A change of state, health or error: the report, its queued row, the device metrics."""
        d = event.device_id
        report = DeviceReport(d, event.kind, event.state, event.ok, event.error, now, event.temperature_c)
        self.reports[d] = report
        self._changes.append((report, dict(event.values)))
        up = event.ok and event.state not in ("offline", "error")
        self.metrics.device_up.labels(d, event.kind).set(1 if up else 0)
        self.metrics.device_slewing.labels(d).set(1 if event.state == "slewing" else 0)
        log.info(
            "device changed",
            device_id=d,
            state=event.state,
            ok=event.ok,
            error=event.error,
            correlation_id=event.correlation_id,
            event_id=str(event.event_id),
        )
        if event.kind == "telescope" and event.state == "slewing" and self._running_request in self._alerts:
            pending = self._alerts.pop(self._running_request)
            self.metrics.alert_to_slew.observe(max(0.0, (now - pending.at).total_seconds()))

    def _write_changes(self) -> None:
        """The queued changes and their history rows, in one transaction; still queued if it fails."""
        changes, self._changes = self._changes, []
        if not changes:
            return
        try:
            self.store.record_changes(changes)
        except BaseException:
            self._changes = changes + self._changes
            raise
        for r, _ in changes:
            self._persisted_at[r.device_id] = r.last_seen

    def flush(self) -> None:
        """Write the queued changes (with their history rows) and the latest periodic statuses."""
        self._write_changes()
        latest, self._latest = self._latest, {}
        for d, (at, _) in latest.items():
            self._seen_at[d] = at
        # last_seen only needs to be fresh enough for the readers' stale marking: a third of it
        every = self.cfg.stale_after_s / 3
        due = [
            (d, at, ev)
            for d, (at, ev) in sorted(latest.items())
            if (at - self._persisted_at.get(d, dt.datetime.min.replace(tzinfo=dt.UTC))).total_seconds()
            >= every
        ]
        if due:
            self.store.touch(
                (replace(self.reports[d], last_seen=at, temperature_c=ev.temperature_c), ev.values)
                for d, at, ev in due
            )
            for d, at, _ in due:
                self._persisted_at[d] = at

    async def on_system(self, event: Event) -> None:
        assert isinstance(event, SystemChanged)
        if event.telescope_id != self.telescope_id:
            return
        if event.dispatch is not None:
            self._running_request = event.dispatch.request_id
        elif event.state != "running":
            self._running_request = None
        self.metrics.set_night_state(self.telescope_id, event.state)
        doc = {
            "state": event.state,
            "reason": event.reason,
            "night": None if event.night is None else event.night.isoformat(),
            "since": event.sent_at.isoformat(),
        }
        status = self.store.status(self.telescope_id)
        current = None if status is None else status.system.get("current_sequence")
        if event.dispatch is not None:
            current = event.dispatch.model_dump(mode="json")
        elif event.state != "running":
            current = None
        doc["current_sequence"] = current
        self.metrics.set_sequence(
            self.telescope_id, None if current is None else str(current.get("sequence_id"))
        )
        self.store.save_status(self.telescope_id, self.clock.now(), system=doc)

    async def on_schedule(self, event: Event) -> None:
        assert isinstance(event, ScheduleChanged)
        m = self.metrics
        t = event.telescope_id
        for labels in self._schedule_labels.pop(t, set()):
            m.sequences.remove(*labels)
        by_reason: dict[str, int] = {}
        for u in event.unscheduled:
            label = reason_label(u.reason)
            by_reason[label] = by_reason.get(label, 0) + 1
        counts = {(t, "scheduled", ""): len(event.scheduled), (t, "unscheduled", ""): 0}
        counts |= {(t, "unscheduled", reason): n for reason, n in by_reason.items()}
        for labels, n in counts.items():
            m.sequences.labels(*labels).set(n)
        self._schedule_labels[t] = set(counts)
        doc = {
            "night": event.night.isoformat(),
            "version": event.version,
            "night_start": event.night_start.isoformat(),
            "night_end": event.night_end.isoformat(),
            "scheduled": [s.model_dump(mode="json") for s in event.scheduled],
            "unscheduled": len(event.unscheduled),
        }
        self.store.save_status(t, self.clock.now(), schedule=doc)

    async def on_alert(self, event: Event) -> None:
        assert isinstance(event, AlertChanged)
        self.metrics.alerts.labels(event.mission, event.action).inc()
        self.metrics.last_alert.labels(self.telescope_id).set(event.sent_at.timestamp())
        if event.action == "created" and event.role == "observation" and event.request_id:
            self._alerts[event.request_id] = _Pending(event.sent_at, event.request_id)
            if len(self._alerts) > 100:
                self._alerts.pop(next(iter(self._alerts)))
        doc = {
            "alert_id": event.alert_id,
            "action": event.action,
            "mission": event.mission,
            "missions": list(event.missions),
            "packet_type": event.packet_type,
            "role": event.role,
            "trigger_time": event.trigger_time.isoformat(),
            "ra_deg": event.ra_deg,
            "dec_deg": event.dec_deg,
            "error_deg": event.error_deg,
            "request_id": event.request_id,
            "at": event.sent_at.isoformat(),
        }
        self.store.save_status(self.telescope_id, self.clock.now(), last_alert=doc)

    # --- the tick ----------------------------------------------------------------------------

    def read_weather_file(self, path: Path) -> None:
        """The site station's file: one JSON object of readings (keys as in a weather status)."""
        try:
            stat = path.stat()
        except OSError:
            return  # gone: the source goes quiet and drops out of the vote
        if stat.st_mtime == self._file_mtime:
            return
        self._file_mtime = stat.st_mtime
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("weather file unreadable", path=str(path), error=str(exc))
            return
        if not isinstance(doc, dict):
            log.warning("weather file is not a JSON object", path=str(path))
            return
        at = self.clock.now()
        if isinstance(doc.get("time"), str):
            try:
                t = dt.datetime.fromisoformat(doc["time"])
                if t.tzinfo is not None:
                    at = min(at, t)
            except ValueError:
                pass
        values = quantities_from_values(doc)
        if values:
            self.vote.observe(FILE_SOURCE, at, values)

    async def tick(self) -> None:
        """Exclusions from the operators, staleness, confirmations, reopening, last_seen."""
        now = self.clock.now()
        if (
            self._exclusions_read_at is None
            or (now - self._exclusions_read_at).total_seconds() >= EXCLUSIONS_POLL_S
        ):
            self._exclusions_read_at = now
            excluded = self.store.excluded(self.site_id)
        else:
            excluded = None
        if excluded is not None:
            have = set(self.vote.memory.excluded)
            for name in set(excluded) - have:
                self.vote.exclude(name, True)
            for name in have - set(excluded):
                self.vote.exclude(name, False)
        if self.cfg.weather_file is not None:
            self.read_weather_file(self.cfg.weather_file)
        self.flush()
        await self.evaluate(refresh_health=True)

    def health(self) -> HealthSummary:
        now = self.clock.now()
        seen = {d: at for d, (at, _) in self._latest.items()}
        reports = {
            d: replace(r, last_seen=seen.get(d) or self._seen_at.get(d) or r.last_seen)
            for d, r in self.reports.items()
        }
        devices = assess(reports, now=now, stale_after_s=self.cfg.stale_after_s, blocking=self.blocking)
        for d in devices:
            if d.health is Health.UNKNOWN and d.kind:
                self.metrics.device_up.labels(d.device_id, d.kind).set(0)
        s = summarise(devices)
        return HealthSummary(
            ok=s.ok,
            up=s.up,
            down=s.down,
            unknown=s.unknown,
            blocking_not_up=list(s.blocking_not_up),
            reason=s.reason,
        )

    async def evaluate(self, *, refresh_health: bool = False) -> None:
        """The verdict now; published when it (or the health summary) changed, or when due."""
        now = self.clock.now()
        v = self.vote.evaluate(now)
        self._verdict = v
        self._weather_metrics(v)
        if refresh_health or self._health is None:
            self._health = self.health()
        health = self._health
        key = (v.key(), (health.ok, tuple(health.blocking_not_up), health.up, health.down, health.unknown))
        due = (
            self._published_at is None
            or (now - self._published_at).total_seconds() >= self.cfg.publish_period_s
        )
        if key == self._published and not due:
            return
        changed = self._published is None or key[0] != self._published[0]
        self._published, self._published_at = key, now
        event = ConditionsChanged(
            site_id=self.site_id,
            safe=v.safe,
            sky=v.sky,
            reason=v.reason,
            votes=[
                ConditionVote(
                    source=s.source,
                    safe=s.safe,
                    reason=s.reason,
                    suspect=s.suspect,
                    excluded=s.excluded,
                    values=dict(s.values),
                    age_s=None if s.age_s is None else max(0.0, round(s.age_s, 1)),
                )
                for s in v.sources
            ],
            quantities={q.quantity: q.value for q in v.quantities},
            reopen_at=v.reopen_at,
            health=health,
        )
        self.store.save_conditions(self.site_id, verdict=verdict_doc(v), memory=self.vote.memory, at=now)
        await self._publish(event)
        self.metrics.changes.labels(self.site_id).inc()
        if changed:
            log.info("conditions", site=self.site_id, safe=v.safe, sky=v.sky, reason=v.reason)

    def _weather_metrics(self, v: Verdict) -> None:
        m = self.metrics
        m.safe.labels(self.site_id).set(1 if v.safe else 0)
        for q in v.quantities:
            if q.value is not None:
                m.vote.labels(self.site_id, q.quantity).set(float(q.value))
        for s in v.sources:
            m.weather_suspect.labels(s.source).set(1 if s.suspect else 0)
            m.weather_voting.labels(s.source).set(1 if s.fresh and not s.suspect and not s.excluded else 0)
            for quantity, value in s.values.items():
                m.weather_value.labels(s.source, quantity).set(float(value))
