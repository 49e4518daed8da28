"""SQLAlchemy 2 models of the PyROS domain. Each table has one owning service (``info['owner']``);
other services read it through events or the owner's API, never write it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both PostgreSQL and SQLite (which drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; PyROS stores UTC-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


def _owner(name: str) -> dict[str, str]:
    return {"owner": name}


# --- routines: users, programs, quotas, requests ---------------------------------------


class User(Base):
    __tablename__ = "users"
    __table_args__ = {"info": _owner("routines")}
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # admin | expert | user
    active: Mapped[bool] = mapped_column(Boolean, default=False)  # validated by an admin
    created_at: Mapped[datetime]
    programs: Mapped[list[ProgramMember]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Program(Base):
    __tablename__ = "programs"
    __table_args__ = {"info": _owner("routines")}
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    grade: Mapped[str] = mapped_column(String(1))  # TAC grade A | B | C
    quota_percent: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime]


class ProgramMember(Base):
    __tablename__ = "program_members"
    __table_args__ = {"info": _owner("routines")}
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    program_code: Mapped[str] = mapped_column(
        ForeignKey("programs.code", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[User] = relationship(back_populates="programs")


class PasswordResetToken(Base):
    __tablename__ = "password_reset_tokens"
    __table_args__ = {"info": _owner("routines")}
    token_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        # The listing, newest first, for everyone and per program (migration 0004).
        Index("ix_requests_created_at_id", "created_at", "id"),
        Index("ix_requests_program_created_at", "program_code", "created_at", "id"),
        {"info": _owner("routines")},
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    program_code: Mapped[str] = mapped_column(String(32), index=True)
    owner: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="routine")  # routine | alert
    strategy: Mapped[str] = mapped_column(String(16), default="best_effort")
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    alert_id: Mapped[str | None] = mapped_column(String(64), index=True)
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sequences: Mapped[list[Sequence]] = relationship(back_populates="request", cascade="all, delete-orphan")


class Sequence(Base):
    __tablename__ = "sequences"
    __table_args__ = {"info": _owner("routines")}
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    target_name: Mapped[str] = mapped_column(String(128))
    ra_deg: Mapped[float]
    dec_deg: Mapped[float]
    constraints: Mapped[dict[str, Any]]
    night: Mapped[date | None] = mapped_column(Date)
    priority_offset: Mapped[int] = mapped_column(Integer, default=0)
    mandatory: Mapped[bool] = mapped_column(Boolean, default=False)
    carry_over_nights: Mapped[int] = mapped_column(Integer, default=0)
    nights_carried: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    windows: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[start_iso, end_iso], ...]
    chosen_window: Mapped[int | None]
    request: Mapped[Request] = relationship(back_populates="sequences")
    albums: Mapped[list[Album]] = relationship(back_populates="sequence", cascade="all, delete-orphan")


class Album(Base):
    __tablename__ = "albums"
    __table_args__ = {"info": _owner("routines")}
    id: Mapped[int] = mapped_column(primary_key=True)
    sequence_id: Mapped[str] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"), index=True)
    detector: Mapped[str] = mapped_column(String(8))  # VIS | NIR
    sequence: Mapped[Sequence] = relationship(back_populates="albums")
    plans: Mapped[list[Plan]] = relationship(back_populates="album", cascade="all, delete-orphan")


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = {"info": _owner("routines")}
    id: Mapped[int] = mapped_column(primary_key=True)
    album_id: Mapped[int] = mapped_column(ForeignKey("albums.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    filter: Mapped[str] = mapped_column(String(16))
    exposure_s: Mapped[float]
    count: Mapped[int]
    dither_arcsec: Mapped[list[Any]] = mapped_column(JSON, default=list)
    album: Mapped[Album] = relationship(back_populates="plans")


class QuotaEntry(Base):
    """Ledger of time booked and used per program and semester."""

    __tablename__ = "quota_ledger"
    __table_args__ = {"info": _owner("routines")}
    id: Mapped[int] = mapped_column(primary_key=True)
    program_code: Mapped[str] = mapped_column(String(32), index=True)
    semester: Mapped[str] = mapped_column(String(8), index=True)  # e.g. 2026B
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    sequence_id: Mapped[str] = mapped_column(String(64))
    booked_s: Mapped[float] = mapped_column(Float, default=0.0)
    used_s: Mapped[float] = mapped_column(Float, default=0.0)
    released: Mapped[bool] = mapped_column(Boolean, default=False)


# --- alerts -------------------------------------------------------------------------


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = {"info": _owner("alerts")}
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(128), index=True)
    missions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)  # active | retracted | test
    trigger_time: Mapped[datetime] = mapped_column(index=True)
    ra_deg: Mapped[float | None]
    dec_deg: Mapped[float | None]
    error_deg: Mapped[float | None]
    is_grb: Mapped[bool] = mapped_column(Boolean, default=False)
    request_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[dict[str, Any]]  # the domain's serialised alert (history, best position...)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertPacket(Base):
    __tablename__ = "alert_packets"
    __table_args__ = {"info": _owner("alerts")}
    ivorn: Mapped[str] = mapped_column(String(512), primary_key=True)
    alert_id: Mapped[str | None] = mapped_column(String(64), index=True)
    intake: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    mission: Mapped[str] = mapped_column(String(32), default="")
    packet_type: Mapped[str] = mapped_column(String(32), default="")
    role: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    xml: Mapped[str] = mapped_column(Text)


class Strategy(Base):
    __tablename__ = "strategies"
    __table_args__ = {"info": _owner("alerts")}
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    mission: Mapped[str] = mapped_column(String(32))
    packet_type: Mapped[str] = mapped_column(String(32), default="*")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]]


# --- scheduler ----------------------------------------------------------------------


class Schedule(Base):
    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("telescope_id", "night", "version"), {"info": _owner("scheduler")})
    id: Mapped[int] = mapped_column(primary_key=True)
    telescope_id: Mapped[str] = mapped_column(String(32))
    night: Mapped[date] = mapped_column(Date, index=True)
    version: Mapped[int]
    trigger: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime]
    objective: Mapped[float] = mapped_column(Float, default=0.0)
    solver: Mapped[str] = mapped_column(String(64), default="")
    document: Mapped[dict[str, Any]]


class PoolRequest(Base):
    """The scheduler's own copy of an accepted request, as ``pyros.requests`` told it (cold start)."""

    __tablename__ = "scheduler_pool"
    __table_args__ = {"info": _owner("scheduler")}
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), default="")
    program_code: Mapped[str] = mapped_column(String(64), default="")
    grade: Mapped[str | None] = mapped_column(String(1), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


# --- devices ------------------------------------------------------------------------


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = {"info": _owner("device-gateway")}
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    driver: Mapped[str] = mapped_column(String(32))  # indi | simulator
    config: Mapped[dict[str, Any]]


class DeviceState(Base):
    __tablename__ = "device_status"
    __table_args__ = {"info": _owner("device-gateway")}
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]


# --- monitoring: device health, conditions, the site's status -------------------------


class MonitoredDevice(Base):
    """monitoring's copy of each device's last status (``pyros.device.status``), for health."""

    __tablename__ = "monitoring_devices"
    __table_args__ = {"info": _owner("monitoring")}
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str] = mapped_column(Text, default="")
    temperature_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    values: Mapped[dict[str, Any]]
    last_seen: Mapped[datetime]  # monitoring's clock when the last status arrived
    changed_at: Mapped[datetime]


class DeviceHistory(Base):
    """Each change of a device's state, health or error, as monitoring saw it."""

    __tablename__ = "monitoring_device_history"
    __table_args__ = {"info": _owner("monitoring")}
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(16))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str] = mapped_column(Text, default="")


class SiteConditions(Base):
    """The last weather verdict of a site, its votes, and the vote's memory (restarts)."""

    __tablename__ = "monitoring_conditions"
    __table_args__ = {"info": _owner("monitoring")}
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    safe: Mapped[bool] = mapped_column(Boolean)
    sky: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    verdict: Mapped[dict[str, Any]]
    memory: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class SiteStatus(Base):
    """What monitoring learnt from the other topics for the status view (one row per telescope)."""

    __tablename__ = "monitoring_site_status"
    __table_args__ = {"info": _owner("monitoring")}
    telescope_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    system: Mapped[dict[str, Any]]
    schedule: Mapped[dict[str, Any]]
    last_alert: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


# --- observer / analyzer ------------------------------------------------------------


class Image(Base):
    __tablename__ = "images"
    __table_args__ = {"info": _owner("observer")}
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(512), unique=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    sequence_id: Mapped[str] = mapped_column(String(64), index=True)
    album: Mapped[str] = mapped_column(String(16))
    plan_index: Mapped[int]
    detector: Mapped[str] = mapped_column(String(8))
    filter: Mapped[str] = mapped_column(String(16))
    exposure_s: Mapped[float]
    created_at: Mapped[datetime]


class Analysis(Base):
    __tablename__ = "analyses"
    __table_args__ = {"info": _owner("analyzer")}
    id: Mapped[int] = mapped_column(primary_key=True)
    image_path: Mapped[str] = mapped_column(String(512), unique=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    result: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


# --- every service: idempotency ------------------------------------------------------


class ProcessedEvent(Base):
    """Events already handled by a consumer group: the idempotency store."""

    __tablename__ = "processed_events"
    __table_args__ = {"info": _owner("*")}
    consumer_group: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    processed_at: Mapped[datetime]
