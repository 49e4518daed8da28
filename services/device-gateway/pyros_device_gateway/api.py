"""device-gateway routes (mounted under /api/v1): the devices and their last status.

The routes read a :class:`DeviceSource`. The gateway (``pyros run gateway`` and ``pyros up`` alike)
hands them a :class:`DeviceView`, a read model fed by ``pyros.device.status``; it never builds the
drivers. The service's own ``router()`` hands them its command handler's devices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field
from pyros_common.auth import current_user
from pyros_common.clock import Clock
from pyros_common.contracts import DeviceStatus, Event
from pyros_common.problem import ProblemRoute, problems

if TYPE_CHECKING:
    from pyros_device_gateway.handlers import CommandHandler

# What a device of each kind accepts besides status and abort (every driver of a kind takes the same).
COMMANDS_BY_KIND: dict[str, frozenset[str]] = {
    "telescope": frozenset({"slew", "park"}),
    "camera": frozenset({"expose"}),
    "filterwheel": frozenset({"set_filter"}),
    "dome": frozenset({"dome"}),
    "focuser": frozenset({"set_focus"}),
    "weather": frozenset(),
    "plc": frozenset(),
}
_ALWAYS = frozenset({"status", "abort"})


@dataclass(frozen=True)
class DeviceRecord:
    """What is known of one device: its last status, and when it was received."""

    device_id: str
    kind: str
    last: DeviceStatus | None
    seen_at: datetime | None = None
    driver: str | None = None
    commands: frozenset[str] | None = None


class DeviceSource(Protocol):
    def devices(self) -> Mapping[str, DeviceRecord]:
        """Every known device, by device id."""
        ...


class DeviceView:
    """Read model of ``pyros.device.status``: the latest status of every device that reported one."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._devices: dict[str, DeviceRecord] = {}

    async def on_status(self, event: Event) -> None:
        """Handler of pyros.device.status; an older status (by its envelope time) never wins."""
        if not isinstance(event, DeviceStatus):
            return
        known = self._devices.get(event.device_id)
        if known is not None and known.last is not None and event.sent_at < known.last.sent_at:
            return
        self._devices[event.device_id] = DeviceRecord(
            device_id=event.device_id, kind=event.kind, last=event, seen_at=self.clock.now()
        )

    def devices(self) -> Mapping[str, DeviceRecord]:
        return self._devices


class HandlerDevices:
    """The devices of a running device-gateway, read from its command handler."""

    def __init__(self, handler: Callable[[], CommandHandler]) -> None:
        self._handler = handler

    def devices(self) -> Mapping[str, DeviceRecord]:
        return {
            d.device_id: DeviceRecord(
                device_id=d.device_id,
                kind=d.driver.kind,
                last=d.last,
                driver=d.driver.driver,
                commands=d.driver.commands,
            )
            for d in self._handler().devices.values()
        }


class DevicePublic(BaseModel):
    device_id: str = Field(description="Device id, as in DeviceCommand.device_id.")
    kind: str = Field(description="Kind of device.")
    driver: str | None = Field(
        None, description="Driver behind it (simulator or indi) when known; status events do not say."
    )
    commands: list[str] = Field(description="Commands it accepts.")
    state: str | None = Field(description="Last reported state, None before the first status.")
    ok: bool | None = Field(description="Last reported health.")
    error: str = Field("", description="Last error, if any.")
    ra_deg: float | None = Field(None, description="Last reported pointing RA, ICRS [deg].")
    dec_deg: float | None = Field(None, description="Last reported pointing Dec, ICRS [deg].")
    temperature_c: float | None = Field(None, description="Last reported sensor temperature [°C].")
    updated_at: datetime | None = Field(
        description="When the last status was sent (UTC, the event's envelope time)."
    )
    seen_at: datetime | None = Field(None, description="When the API last received a status (UTC).")
    last_status: dict[str, Any] | None = Field(description="The last DeviceStatus event, as sent.")

    @classmethod
    def of(cls, d: DeviceRecord) -> DevicePublic:
        last = d.last
        commands = d.commands if d.commands is not None else COMMANDS_BY_KIND.get(d.kind, frozenset())
        return cls(
            device_id=d.device_id,
            kind=d.kind,
            driver=d.driver,
            commands=sorted(commands | _ALWAYS),
            state=last.state if last else None,
            ok=last.ok if last else None,
            error=last.error if last else "",
            ra_deg=last.ra_deg if last else None,
            dec_deg=last.dec_deg if last else None,
            temperature_c=last.temperature_c if last else None,
            # A status never stamped (the handler's own copy) has the epoch as its time: unknown.
            updated_at=last.sent_at if last and last.producer else None,
            seen_at=d.seen_at,
            last_status=last.model_dump(mode="json") if last else None,
        )


def routes(*, devices: DeviceSource, auth: Callable[..., Any] = current_user) -> APIRouter:
    """The devices routes over ``devices``; ``auth`` admits a caller (every route needs a token)."""
    r = APIRouter(
        tags=["devices"],
        dependencies=[Depends(auth)],
        route_class=ProblemRoute,
        responses=problems(401, 404, 422),
    )

    @r.get("/devices", response_model=list[DevicePublic], summary="Every device and its last status")
    async def list_devices() -> list[DevicePublic]:  # on the event loop, where the view is fed
        known = devices.devices()
        return [DevicePublic.of(known[k]) for k in sorted(known)]

    @r.get("/devices/{device_id}", response_model=DevicePublic, summary="One device and its last status")
    async def get_device(device_id: str) -> DevicePublic:
        d = devices.devices().get(device_id)
        if d is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown device {device_id!r}")
        return DevicePublic.of(d)

    return r
