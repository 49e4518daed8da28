"""Alert domain model: the normalised packet, the alert and the result of ingesting a packet.

Everything here is plain data. Alerts are immutable; the ``AlertBook`` replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

Role = Literal["observation", "prediction", "utility", "test"]
Action = Literal["created", "updated", "retracted", "ignored", "duplicate"]
AlertStatus = Literal["active", "retracted"]

ROLES: tuple[Role, ...] = ("observation", "prediction", "utility", "test")


class RejectedPacket(Exception):
    """A packet we refuse to process; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason or "rejected"


@dataclass(frozen=True, slots=True)
class Citation:
    """One ``<EventIVORN cite=...>`` of the packet's ``<Citations>``."""

    ivorn: str
    cite: str  # followup, supersedes or retraction


@dataclass(frozen=True, slots=True)
class NormalizedPacket:
    """A VOEvent packet reduced to what the alert logic needs.

    ``trigger_time`` is the WhereWhen ISOTime (UTC, ms precision). ``event_time`` is the
    burst T0 used for cross-mission matching: the mission's own T0 when the packet carries
    one (SVOM ``Alert_Seq_T0``; MXT packets give the MXT observation time as ISOTime),
    otherwise ``trigger_time``. Position fields are all ``None`` when the packet has no
    usable position (absent, or a sender sentinel such as Fermi GBM Alert 0/0/0).
    """

    ivorn: str
    role: Role
    mission: str
    instrument: str
    packet_type: int | str
    event_key: str
    trigger_time: datetime
    event_time: datetime
    ra_deg: float | None
    dec_deg: float | None
    error_deg: float | None
    is_grb: bool
    is_retraction: bool
    citations: tuple[Citation, ...]
    raw_size: int

    @property
    def has_position(self) -> bool:
        return self.ra_deg is not None and self.dec_deg is not None and self.error_deg is not None

    @property
    def cited_ivorns(self) -> tuple[str, ...]:
        return tuple(c.ivorn for c in self.citations)


@dataclass(frozen=True, slots=True)
class PacketRecord:
    """What an alert remembers of each packet it received (its history)."""

    ivorn: str
    role: Role
    mission: str
    instrument: str
    packet_type: int | str
    event_key: str
    trigger_time: datetime
    event_time: datetime
    ra_deg: float | None
    dec_deg: float | None
    error_deg: float | None
    is_grb: bool
    is_retraction: bool
    received_at: datetime
    action: Action

    @classmethod
    def from_packet(cls, packet: NormalizedPacket, *, received_at: datetime, action: Action) -> PacketRecord:
        """Record ``packet`` as received at ``received_at``."""
        return cls(
            ivorn=packet.ivorn,
            role=packet.role,
            mission=packet.mission,
            instrument=packet.instrument,
            packet_type=packet.packet_type,
            event_key=packet.event_key,
            trigger_time=packet.trigger_time,
            event_time=packet.event_time,
            ra_deg=packet.ra_deg,
            dec_deg=packet.dec_deg,
            error_deg=packet.error_deg,
            is_grb=packet.is_grb,
            is_retraction=packet.is_retraction,
            received_at=received_at,
            action=action,
        )

    @property
    def has_position(self) -> bool:
        return self.ra_deg is not None and self.dec_deg is not None and self.error_deg is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for storage."""
        return {
            "ivorn": self.ivorn,
            "role": self.role,
            "mission": self.mission,
            "instrument": self.instrument,
            "packet_type": self.packet_type,
            "event_key": self.event_key,
            "trigger_time": self.trigger_time.isoformat(),
            "event_time": self.event_time.isoformat(),
            "ra_deg": self.ra_deg,
            "dec_deg": self.dec_deg,
            "error_deg": self.error_deg,
            "is_grb": self.is_grb,
            "is_retraction": self.is_retraction,
            "received_at": self.received_at.isoformat(),
            "action": self.action,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PacketRecord:
        """Inverse of ``to_dict``."""
        return cls(
            ivorn=str(data["ivorn"]),
            role=data["role"],
            mission=str(data["mission"]),
            instrument=str(data["instrument"]),
            packet_type=data["packet_type"],
            event_key=str(data["event_key"]),
            trigger_time=datetime.fromisoformat(data["trigger_time"]),
            event_time=datetime.fromisoformat(data["event_time"]),
            ra_deg=data["ra_deg"],
            dec_deg=data["dec_deg"],
            error_deg=data["error_deg"],
            is_grb=bool(data["is_grb"]),
            is_retraction=bool(data["is_retraction"]),
            received_at=datetime.fromisoformat(data["received_at"]),
            action=data["action"],
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """One astrophysical event, possibly seen by several missions.

    ``events`` are the (mission, event key) pairs merged into this alert;
    ``retracted_events`` those a sender withdrew. The alert is retracted once every one
    of its events is. The position is the best (smallest error) one among packets of
    events that are not retracted.
    """

    alert_id: str
    role: Role
    packets: tuple[PacketRecord, ...]
    retracted_events: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    request_revision: int = 0

    @property
    def events(self) -> tuple[tuple[str, str], ...]:
        seen: dict[tuple[str, str], None] = {}
        for p in self.packets:
            seen.setdefault((p.mission, p.event_key), None)
        return tuple(seen)

    @property
    def missions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for m, _ in self.events))

    @property
    def status(self) -> AlertStatus:
        events = self.events
        if events and all(e in self.retracted_events for e in events):
            return "retracted"
        return "active"

    @property
    def ivorns(self) -> tuple[str, ...]:
        return tuple(p.ivorn for p in self.packets)

    @property
    def trigger_time(self) -> datetime:
        """Earliest burst T0 among the alert's packets."""
        return min(p.event_time for p in self.packets)

    @property
    def best(self) -> PacketRecord | None:
        """The packet giving the alert's position.

        Within one instrument of one event the latest packet supersedes the earlier ones
        (GBM Fin_Pos over Gnd_Pos, IceCube revision 1 over 0, even when their error is
        larger); across instruments and missions the smallest error wins (MXT over
        ECLAIRs over GBM). Retracted events do not count.
        """
        latest: dict[tuple[str, str, str], PacketRecord] = {}
        for p in self.packets:
            if p.has_position and (p.mission, p.event_key) not in self.retracted_events:
                latest[(p.mission, p.event_key, p.instrument)] = p
        best: PacketRecord | None = None
        for p in latest.values():
            assert p.error_deg is not None
            if best is None or p.error_deg < (best.error_deg or 0.0):
                best = p
        return best

    @property
    def ra_deg(self) -> float | None:
        b = self.best
        return None if b is None else b.ra_deg

    @property
    def dec_deg(self) -> float | None:
        b = self.best
        return None if b is None else b.dec_deg

    @property
    def error_deg(self) -> float | None:
        b = self.best
        return None if b is None else b.error_deg

    @property
    def is_grb(self) -> bool:
        return any(p.is_grb for p in self.packets if (p.mission, p.event_key) not in self.retracted_events)

    @property
    def name(self) -> str:
        """A human name: ``GRB yymmdd.fff`` style from the trigger time."""
        t = self.trigger_time
        frac = (t.hour * 3600 + t.minute * 60 + t.second) / 86400.0
        prefix = "GRB" if self.is_grb else "Alert"
        return f"{prefix} {t:%y%m%d}.{int(frac * 1000):03d}"

    @property
    def request_id(self) -> str | None:
        """Id of the alert's request, ``None`` before the first one.

        One alert has one request; a better position revises it (``request_revision``)."""
        if self.request_revision == 0:
            return None
        return f"{self.alert_id}-req"

    def with_packet(self, record: PacketRecord) -> Alert:
        return replace(self, packets=(*self.packets, record))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for storage; ``Alert.from_dict`` rebuilds it."""
        return {
            "alert_id": self.alert_id,
            "role": self.role,
            "packets": [p.to_dict() for p in self.packets],
            "retracted_events": sorted([list(e) for e in self.retracted_events]),
            "request_revision": self.request_revision,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Inverse of ``to_dict``."""
        return cls(
            alert_id=str(data["alert_id"]),
            role=data["role"],
            packets=tuple(PacketRecord.from_dict(p) for p in data["packets"]),
            retracted_events=frozenset((str(m), str(k)) for m, k in data.get("retracted_events", [])),
            request_revision=int(data.get("request_revision", 0)),
        )


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the book did with one packet.

    ``request_needed`` is true when the service must submit (or replace) the alert
    request ``request_id``: a new observable position, or a better one.
    """

    action: Action
    alert: Alert
    request_needed: bool
    reason: str
    packet: NormalizedPacket

    @property
    def alert_id(self) -> str:
        return self.alert.alert_id

    @property
    def request_id(self) -> str | None:
        return self.alert.request_id if self.request_needed else None
