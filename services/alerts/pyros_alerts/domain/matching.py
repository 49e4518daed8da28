"""One alert per astrophysical event.

``AlertBook`` holds the alerts in memory. It is pure: the caller passes the received time
and persists ``book.to_state()``; ``AlertBook.from_state`` rebuilds it.

Matching rule, tried in this order for each packet:

1. Same IVORN as a packet already seen → ``duplicate`` (handled once).
2. Same (role, mission, event key) as an existing alert → that alert (updates of one
   trigger: BAT → XRT, ECLAIRs → MXT initial → MXT update, GBM Alert → Fin_Pos).
3. The packet cites an IVORN of an existing alert (followup, supersedes, retraction) →
   that alert.
4. Cross-mission, for ``observation`` packets only, against active observation alerts
   that hold no event of the packet's mission and whose messenger is compatible
   (``COMPATIBLE_MESSENGERS``):
   - both have a position: burst times within ``window_s`` (default 60 s) AND the error
     circles overlap once widened to ``n_sigma`` × (error ⊕ mission systematic);
   - either lacks a position: burst times within ``time_only_window_s`` (default 10 s).
   The closest in time wins.
5. Otherwise a new alert.

Times compared are each packet's ``trigger_time`` and ``event_time`` (the mission T0); the
smallest difference counts.

Defaults, from the corpus and physics: GBM vs ECLAIRs/GRM trigger times differ by 0.2–3.2 s
(2026-04-21), Swift BAT vs GBM by 0.19 s (GRB 170912), GW170817 vs GRB 170817A by 1.7 s.
Coded-mask image triggers integrate up to minutes (ECLAIRs timescales reach 328 s), so
60 s is kept when positions confirm the match; without positions 10 s covers every GRB
monitor pair seen and the -1/+5 s GW–GRB window used by LVK (RAVEN) while keeping chance
coincidences (a few GRB triggers a day) near 1e-3 per day. The GBM systematic (3.7°,
Connaughton et al. 2015) is needed: its Gnd_Pos for 2026-04-21 is 3.2° from ECLAIRs with
a 1.66° statistical radius.

Retractions withdraw one event (mission, key) of the alert; the alert is ``retracted``
when all its events are, else it stays active with the remaining events' best position.
Packets with role ``test``/``utility``/``prediction`` are recorded on alerts of their own
role (never merged with observations) and never need a request (action ``ignored``).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pyros_alerts.domain.model import Action, Alert, IngestResult, NormalizedPacket, PacketRecord

MESSENGERS: Mapping[str, str] = {
    "SVOM": "gamma",
    "Swift": "gamma",
    "Fermi": "gamma",
    "INTEGRAL": "gamma",
    "LVK": "gw",
    "IceCube": "neutrino",
}

COMPATIBLE_MESSENGERS: frozenset[frozenset[str]] = frozenset(
    {
        frozenset({"gamma"}),
        frozenset({"gamma", "gw"}),
        frozenset({"gamma", "neutrino"}),
        frozenset({"gw", "neutrino"}),
    }
)

# Systematic position error to add in quadrature, per (mission, instrument), degrees.
DEFAULT_SYSTEMATICS_DEG: Mapping[tuple[str, str], float] = {("Fermi", "GBM"): 3.7}


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    """Cross-mission matching knobs (see the module docstring for the rule)."""

    window_s: float = 60.0
    time_only_window_s: float = 10.0
    n_sigma: float = 3.0
    systematics_deg: Mapping[tuple[str, str], float] = field(
        default_factory=lambda: dict(DEFAULT_SYSTEMATICS_DEG)
    )
    # Who may retract another mission's event: mission -> missions trusted to retract it. By
    # default a retraction counts only from the mission that issued the event it withdraws.
    trusted_retractors: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def may_retract(self, retractor: str, issuer: str) -> bool:
        return retractor == issuer or retractor in self.trusted_retractors.get(issuer, frozenset())

    def __post_init__(self) -> None:
        if self.window_s < 0 or self.time_only_window_s < 0 or self.n_sigma <= 0:
            raise ValueError("windows must be >= 0 and n_sigma > 0")


def angular_separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (Vincenty formula, stable at all separations)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    dra = r2 - r1
    num = math.hypot(
        math.cos(d2) * math.sin(dra),
        math.cos(d1) * math.sin(d2) - math.sin(d1) * math.cos(d2) * math.cos(dra),
    )
    den = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(dra)
    return math.degrees(math.atan2(num, den))


def _radius(p: PacketRecord, policy: MatchPolicy) -> float:
    assert p.error_deg is not None
    sys = policy.systematics_deg.get((p.mission, p.instrument), 0.0)
    return policy.n_sigma * math.hypot(p.error_deg, sys)


def _dt_s(a: PacketRecord, b: PacketRecord) -> float:
    return min(
        abs((x - y).total_seconds())
        for x in (a.trigger_time, a.event_time)
        for y in (b.trigger_time, b.event_time)
    )


def _compatible(mission_a: str, mission_b: str) -> bool:
    ma, mb = MESSENGERS.get(mission_a), MESSENGERS.get(mission_b)
    return ma is not None and mb is not None and frozenset({ma, mb}) in COMPATIBLE_MESSENGERS


@dataclass(slots=True)
class AlertBook:
    """The alerts, indexed by packet IVORN and by (role, mission, event key)."""

    policy: MatchPolicy = field(default_factory=MatchPolicy)
    _alerts: dict[str, Alert] = field(default_factory=dict)
    _by_ivorn: dict[str, str] = field(default_factory=dict)
    _by_event: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # Every packet time (trigger and event, POSIX seconds) of every alert, sorted: the
    # cross-mission match looks only at alerts with a time near the packet's, not at them all.
    _times: list[tuple[float, str]] = field(default_factory=list)
    _timed: dict[str, set[float]] = field(default_factory=dict)
    _order: dict[str, int] = field(default_factory=dict)  # alert id -> when first stored

    @classmethod
    def from_alerts(cls, alerts: Iterable[Alert], *, policy: MatchPolicy | None = None) -> AlertBook:
        """Rebuild a book (and its indexes) from stored alerts."""
        book = cls(policy=policy or MatchPolicy())
        for alert in alerts:
            book._store(alert)
        return book

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, policy: MatchPolicy | None = None) -> AlertBook:
        """Inverse of ``to_state``."""
        return cls.from_alerts((Alert.from_dict(a) for a in state.get("alerts", [])), policy=policy)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state to persist."""
        return {"alerts": [a.to_dict() for a in self._alerts.values()]}

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(self._alerts.values())

    def get(self, alert_id: str) -> Alert | None:
        """The alert with this id, if any."""
        return self._alerts.get(alert_id)

    def alert_for_ivorn(self, ivorn: str) -> Alert | None:
        """The alert holding the packet ``ivorn``, if any."""
        alert_id = self._by_ivorn.get(ivorn)
        return None if alert_id is None else self._alerts[alert_id]

    def ingest(self, packet: NormalizedPacket, received_at: datetime) -> IngestResult:
        """Attach ``packet`` to its alert (or a new one) and say what changed."""
        if received_at.tzinfo is None or received_at.utcoffset() != timedelta(0):
            raise ValueError("received_at must be timezone-aware UTC")
        known = self.alert_for_ivorn(packet.ivorn)
        if known is not None:
            return IngestResult("duplicate", known, False, "IVORN already received", packet)

        existing, how = self._find(packet)
        if existing is None:
            return self._create(packet, received_at)
        return self._update(existing, packet, received_at, how)

    # --- internals ------------------------------------------------------------------------

    def _store(self, alert: Alert) -> None:
        self._alerts[alert.alert_id] = alert
        self._order.setdefault(alert.alert_id, len(self._order))
        timed = self._timed.setdefault(alert.alert_id, set())
        for p in alert.packets:
            self._by_ivorn[p.ivorn] = alert.alert_id
            self._by_event.setdefault((p.role, p.mission, p.event_key), alert.alert_id)
            for t in (p.trigger_time.timestamp(), p.event_time.timestamp()):
                if t not in timed:
                    timed.add(t)
                    insort(self._times, (t, alert.alert_id))

    def _near(self, probe: PacketRecord) -> list[Alert]:
        """The alerts with a packet time within the longer match window of ``probe``'s times,
        in the order they were first stored (the order a scan of every alert would take)."""
        w = max(self.policy.window_s, self.policy.time_only_window_s) + 1.0  # + float rounding
        ids: set[str] = set()
        for x in {probe.trigger_time.timestamp(), probe.event_time.timestamp()}:
            lo = bisect_left(self._times, (x - w,))
            hi = bisect_right(self._times, (x + w, "\U0010ffff"))
            ids.update(aid for _, aid in self._times[lo:hi])
        return [self._alerts[aid] for aid in sorted(ids, key=self._order.__getitem__)]

    def _find(self, packet: NormalizedPacket) -> tuple[Alert | None, str]:
        alert_id = self._by_event.get((packet.role, packet.mission, packet.event_key))
        if alert_id is not None:
            return self._alerts[alert_id], f"same {packet.mission} event {packet.event_key}"
        for cited in packet.citations:
            alert = self.alert_for_ivorn(cited.ivorn)
            if alert is not None and alert.role == packet.role:
                return alert, f"cites {cited.ivorn} ({cited.cite or 'citation'})"
        if packet.role != "observation" or packet.is_retraction:
            return None, ""
        return self._cross_mission(packet)

    def _cross_mission(self, packet: NormalizedPacket) -> tuple[Alert | None, str]:
        probe = PacketRecord.from_packet(packet, received_at=packet.trigger_time, action="created")
        best: tuple[float, Alert, str] | None = None
        for alert in self._near(probe):
            if alert.role != "observation":
                continue
            missions = alert.missions
            if packet.mission in missions:
                continue  # one mission does not trigger twice on one burst
            if not all(_compatible(packet.mission, m) for m in missions) or alert.status != "active":
                continue
            found = self._closest_match(probe, alert)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], alert, found[1])
        if best is None:
            return None, ""
        return best[1], best[2]

    def _closest_match(self, probe: PacketRecord, alert: Alert) -> tuple[float, str] | None:
        pol = self.policy
        ref = alert.best
        if probe.has_position and ref is not None:
            assert probe.ra_deg is not None and probe.dec_deg is not None
            assert ref.ra_deg is not None and ref.dec_deg is not None
            sep = angular_separation_deg(probe.ra_deg, probe.dec_deg, ref.ra_deg, ref.dec_deg)
            if sep > _radius(probe, pol) + _radius(ref, pol):
                return None
            window, why = pol.window_s, f"time and position ({sep:.2f} deg apart)"
        else:
            window, why = pol.time_only_window_s, "time only (no position on one side)"
        dt = min(_dt_s(probe, p) for p in alert.packets)
        if dt > window:
            return None
        return dt, f"{why}, {dt:.2f} s from {'/'.join(alert.missions)}"

    def _new_id(self, packet: NormalizedPacket) -> str:
        prefix = "" if packet.role == "observation" else f"{packet.role}-"
        base = f"{prefix}{packet.mission}-{packet.event_key}".lower().replace(" ", "_")
        alert_id, n = base, 1
        while alert_id in self._alerts:
            n += 1
            alert_id = f"{base}-{n}"
        return alert_id

    def _create(self, packet: NormalizedPacket, received_at: datetime) -> IngestResult:
        event = (packet.mission, packet.event_key)
        if packet.role != "observation":
            action: Action = "ignored"
            reason = f"role {packet.role}: recorded, no request"
        elif packet.is_retraction:
            action, reason = "retracted", "retraction of an event not seen before"
        else:
            action, reason = "created", "new event"
        alert = Alert(
            alert_id=self._new_id(packet),
            role=packet.role,
            packets=(PacketRecord.from_packet(packet, received_at=received_at, action=action),),
            retracted_events=frozenset({event}) if packet.is_retraction else frozenset(),
        )
        needed = action == "created" and _observable(alert)
        if needed:
            alert = replace(alert, request_revision=1)
        self._store(alert)
        return IngestResult(action, alert, needed, reason, packet)

    def _update(
        self, alert: Alert, packet: NormalizedPacket, received_at: datetime, how: str
    ) -> IngestResult:
        before_status, before_best = alert.status, alert.best
        retracted = alert.retracted_events
        if packet.is_retraction and not any(
            self.policy.may_retract(packet.mission, m) for m in alert.missions
        ):
            # Only the issuing authority (or one trusted for it) withdraws an event: a packet of
            # another mission citing the alert with cite="retraction" is recorded and ignored.
            record = PacketRecord.from_packet(packet, received_at=received_at, action="ignored")
            kept = replace(alert, packets=(*alert.packets, record))
            self._store(kept)
            reason = (
                f"retraction from {packet.mission} ignored: only {', '.join(sorted(alert.missions))} "
                f"(the issuing authority) may retract this alert ({how})"
            )
            return IngestResult("ignored", kept, False, reason, packet)
        if packet.is_retraction:
            retracted = retracted | {(packet.mission, packet.event_key)}
            for cited in packet.citations:
                if cited.cite == "retraction":
                    rec = next((p for p in alert.packets if p.ivorn == cited.ivorn), None)
                    if rec is not None and self.policy.may_retract(packet.mission, rec.mission):
                        retracted = retracted | {(rec.mission, rec.event_key)}
        # Decide the action on the would-be state, then record it with that action.
        trial = replace(alert, retracted_events=retracted)
        trial = trial.with_packet(PacketRecord.from_packet(packet, received_at=received_at, action="updated"))

        action: Action
        needed = False
        if packet.role != "observation":
            action, reason = "ignored", f"role {packet.role}: recorded, no request ({how})"
        elif before_status == "retracted":
            action, reason = "ignored", f"alert already retracted ({how})"
        elif trial.status == "retracted":
            action, reason = "retracted", f"retraction ({how})"
        else:
            action = "updated"
            after = trial.best
            moved = after is not None and (before_best is None or after.ivorn != before_best.ivorn)
            needed = _observable(trial) and (moved or alert.request_revision == 0)
            reason = f"{how}; {'new best position' if moved else 'position unchanged'}"
            if packet.is_retraction:
                reason = f"{how}; {packet.mission} event withdrawn, alert stays active"
        record = PacketRecord.from_packet(packet, received_at=received_at, action=action)
        updated = replace(alert, retracted_events=retracted, packets=(*alert.packets, record))
        if needed:
            updated = replace(updated, request_revision=updated.request_revision + 1)
        self._store(updated)
        return IngestResult(action, updated, needed, reason, packet)


def _observable(alert: Alert) -> bool:
    """An alert needs a request when it is a live GRB observation with a position."""
    return (
        alert.role == "observation" and alert.status == "active" and alert.is_grb and alert.best is not None
    )
