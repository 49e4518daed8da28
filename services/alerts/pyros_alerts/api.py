"""Alerts routes (mounted under /api/v1): alerts, their packets, the HTTP intake, strategies."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field
from pyros_common.auth import current_user, require_role
from pyros_common.bus.port import dead_letter
from pyros_common.clock import Clock
from pyros_common.contracts import Event, VoeventReceived
from pyros_common.db import Database
from pyros_common.db.models import Alert as AlertRow
from pyros_common.db.models import AlertPacket as PacketRow
from pyros_common.db.models import Strategy as StrategyRow
from pyros_common.problem import ProblemRoute, problems

from pyros_alerts import store
from pyros_alerts.domain import MAX_PACKET_BYTES, RejectedPacket, Strategy, StrategyError, parse_packet
from pyros_alerts.intakes import extract_ivorn

Receive = Callable[[bytes, str], Awaitable[Any]]
Publish = Callable[[Event, str | None], Awaitable[None]]  # (event, key)


class AlertPublic(BaseModel):
    id: str = Field(description="Alert id.")
    event_key: str = Field(description="Mission trigger id of the first packet.")
    missions: list[str] = Field(description="Missions that reported the event.")
    status: str = Field(description="active | retracted | test | utility | prediction.")
    trigger_time: datetime = Field(description="Burst T0 (UTC).")
    ra_deg: float | None = Field(description="Best right ascension, ICRS [deg].")
    dec_deg: float | None = Field(description="Best declination, ICRS [deg].")
    error_deg: float | None = Field(description="Best error radius [deg].")
    is_grb: bool = Field(description="A mission identified a GRB.")
    request_id: str | None = Field(description="Current alert request, if any.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: AlertRow) -> AlertPublic:
        return cls(
            id=r.id,
            event_key=r.event_key,
            missions=list(r.missions),
            status=r.status,
            trigger_time=r.trigger_time,
            ra_deg=r.ra_deg,
            dec_deg=r.dec_deg,
            error_deg=r.error_deg,
            is_grb=r.is_grb,
            request_id=r.request_id,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


class PacketPublic(BaseModel):
    ivorn: str
    intake: str
    received_at: datetime
    mission: str
    packet_type: str
    role: str
    action: str
    reason: str

    @classmethod
    def of(cls, r: PacketRow) -> PacketPublic:
        return cls(
            ivorn=r.ivorn,
            intake=r.intake,
            received_at=r.received_at,
            mission=r.mission,
            packet_type=r.packet_type,
            role=r.role,
            action=r.action,
            reason=r.reason,
        )


class AlertDetail(AlertPublic):
    packets: list[PacketPublic] = Field(description="Packet history, oldest first.")
    history: list[dict[str, Any]] = Field(
        description="The domain's record of each packet (position, action)."
    )


class AlertList(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AlertPublic]


class IntakeAccepted(BaseModel):
    ivorn: str
    accepted: bool
    reason: str


class StrategyPublic(BaseModel):
    name: str
    description: str
    active: bool
    fallback: bool
    defaults: list[dict[str, Any]]
    body: dict[str, Any]

    @classmethod
    def of(cls, r: StrategyRow) -> StrategyPublic:
        s = Strategy.model_validate(r.body)
        return cls(
            name=r.name,
            description=s.description,
            active=r.active,
            fallback=s.fallback,
            defaults=[{"mission": d.mission, "packet_types": list(d.packet_types)} for d in s.defaults],
            body=r.body,
        )


class DefaultChoice(BaseModel):
    strategy: str = Field(description="Name of the strategy to make the default.")


class Activation(BaseModel):
    active: bool = Field(True, description="Switch the strategy on (true) or off (false).")


def _problem(status_code: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status_code, "detail": detail, **extra}
    return JSONResponse(body, status_code=status_code, media_type="application/problem+json")


def publishing_receive(
    *,
    publish: Publish,
    clock: Clock,
    group: str = "alerts",
    on_too_large: Callable[[str, str, str], None] | None = None,
) -> Receive:
    """The one intake step of every intake (HTTP, VTP, GCN; in the alerts service or the gateway):
    each packet goes, verbatim, on ``pyros.voevents.raw`` keyed by its IVORN, and the alerts
    handler does the rest. ``on_too_large(intake, ivorn, reason)`` counts and logs a refusal."""

    async def receive(raw: bytes, intake: str) -> VoeventReceived | None:
        ivorn = extract_ivorn(raw)
        if len(raw) > MAX_PACKET_BYTES:
            # Too big for the raw topic: dead-letter it here, keeping its head for diagnosis.
            reason = f"packet larger than {MAX_PACKET_BYTES} bytes ({len(raw)} bytes; first 64 KiB kept)"
            dl = dead_letter(
                topic=VoeventReceived.topic,
                raw=raw[:65536],
                key=ivorn.encode(),
                reason=reason,
                group=group,
                attempts=1,
            )
            await publish(dl, None)
            if on_too_large is not None:
                on_too_large(intake, ivorn, reason)
            return None
        try:
            text, exact = raw.decode("utf-8"), None
        except UnicodeDecodeError:  # kept exact, so that the handler parses these very bytes
            text, exact = raw.decode("utf-8", errors="replace"), base64.b64encode(raw).decode("ascii")
        event = VoeventReceived(
            ivorn="" if ivorn == "unknown" else ivorn,
            intake=intake,
            received_at=clock.now(),
            xml=text,
            size_bytes=len(raw),
            xml_base64=exact,
        )
        await publish(event, ivorn)
        return event

    return receive


def routes(
    *,
    db: Callable[[], Database],
    receive: Receive,
    writer: Callable[..., Any] | None = None,
    admin: Callable[..., Any] | None = None,
    reader: Callable[..., Any] = current_user,
) -> APIRouter:
    """The routes; every one needs a token (``reader``); ``writer`` guards the HTTP intake (admin or
    expert), ``admin`` the strategy changes."""
    writer = writer or require_role("admin", "expert")
    admin = admin or require_role("admin")
    r = APIRouter(
        tags=["alerts"],
        dependencies=[Depends(reader)],
        route_class=ProblemRoute,
        responses=problems(401, 403, 404, 409, 422),
    )

    @r.get("/alerts/strategies", summary="Alert strategies, their defaults and whether active.")
    def list_strategies() -> list[StrategyPublic]:
        with db().session() as s:
            return [StrategyPublic.of(row) for row in store.strategy_rows(s)]

    @r.put(
        "/alerts/strategies/defaults/{mission}/{packet_type}",
        dependencies=[Depends(admin)],
        summary="Make a strategy the default for one mission and packet type.",
    )
    def put_default(mission: str, packet_type: str, choice: DefaultChoice) -> StrategyPublic:
        with db().session() as s:
            try:
                row = store.set_default(s, mission=mission, packet_type=packet_type, name=choice.strategy)
            except KeyError:
                raise HTTPException(404, f"no strategy {choice.strategy!r}") from None
            except (StrategyError, ValueError) as exc:
                raise HTTPException(409, str(exc)) from None
            return StrategyPublic.of(row)

    @r.post(
        "/alerts/strategies/{name}/activate",
        dependencies=[Depends(admin)],
        summary="Switch a strategy on or off (an inactive strategy is never picked).",
    )
    def activate(name: str, body: Activation | None = None) -> StrategyPublic:
        with db().session() as s:
            try:
                row = store.set_active(s, name=name, active=True if body is None else body.active)
            except KeyError:
                raise HTTPException(404, f"no strategy {name!r}") from None
            except StrategyError as exc:
                raise HTTPException(409, str(exc)) from None
            return StrategyPublic.of(row)

    @r.post(
        "/alerts/voevents",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(writer)],
        summary="Submit one VOEvent packet (XML body); also how an admin simulates an alert.",
        responses={
            422: {"description": "The packet is rejected; the reason is in `detail`, and it goes to the DLQ."}
        },
    )
    async def post_voevent(request: Request) -> Any:
        raw = await request.body()
        ivorn = extract_ivorn(raw)
        reason = ""
        try:
            packet = parse_packet(raw)
            ivorn = packet.ivorn
        except RejectedPacket as exc:
            reason = exc.reason
        await receive(raw, "http")  # rejected packets too: the handler records them and sends them to the DLQ
        if reason:
            return _problem(422, "VOEvent rejected", reason, ivorn=ivorn, accepted=False, reason=reason)
        return IntakeAccepted(ivorn=ivorn, accepted=True, reason="queued for processing")

    @r.get("/alerts", summary="Alerts, newest trigger first, filtered by time, mission and status.")
    def list_alerts(
        since: Annotated[AwareDatetime | None, Query(description="Trigger time at or after (UTC).")] = None,
        until: Annotated[AwareDatetime | None, Query(description="Trigger time before (UTC).")] = None,
        mission: Annotated[str | None, Query(description="Mission, e.g. SVOM, Fermi.")] = None,
        status_: Annotated[
            Literal["active", "retracted", "test", "utility", "prediction"] | None, Query(alias="status")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> AlertList:
        with db().session() as s:
            page = store.query_alerts(
                s, since=since, until=until, mission=mission, status=status_, limit=limit, offset=offset
            )
            return AlertList(
                total=page.total, limit=limit, offset=offset, items=[AlertPublic.of(a) for a in page.items]
            )

    @r.get("/alerts/{alert_id}", summary="One alert with its packet history and its request.")
    def get_alert(alert_id: str) -> AlertDetail:
        with db().session() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise HTTPException(404, f"no alert {alert_id!r}")
            packets = [PacketPublic.of(p) for p in store.alert_packets(s, alert_id)]
            return AlertDetail(
                **AlertPublic.of(row).model_dump(),
                packets=packets,
                history=list(row.state.get("packets", [])),
            )

    return r
