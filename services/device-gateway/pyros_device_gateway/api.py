"""device-gateway routes (mounted under /api/v1): the devices, their last status, manual operations.

The routes read a :class:`DeviceSource`. The gateway (``pyros run gateway`` and ``pyros up`` alike)
hands them a :class:`DeviceView`, a read model fed by ``pyros.device.status``; it never builds the
drivers. The service's own ``router()`` hands them its command handler's devices.

A manual operation (``POST /devices/{id}/commands``) is published as a DeviceCommand on the bus,
never run here: in ``pyros run gateway`` there is no driver. Whether a sequence runs is read from
the devices' last statuses, which name the command a device executes and who issued it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field
from pyros_common.auth import current_user, require_role
from pyros_common.clock import Clock
from pyros_common.contracts import DeviceCommand, DeviceStatus, Event
from pyros_common.problem import ProblemError, ProblemRoute, problems

from pyros_device_gateway.domain import InvalidParams, parse_params

if TYPE_CHECKING:
    from pyros_device_gateway.handlers import CommandHandler

# What a device of each kind accepts besides status and abort (every driver of a kind takes the same).
COMMANDS_BY_KIND: dict[str, frozenset[str]] = {
    "telescope": frozenset({"slew", "park", "unpark", "offset"}),
    "camera": frozenset({"expose", "cooler"}),
    "filterwheel": frozenset({"set_filter"}),
    "dome": frozenset({"dome"}),
    "focuser": frozenset({"set_focus"}),
    "weather": frozenset(),
    "plc": frozenset(),
}
_ALWAYS = frozenset({"status", "abort", "connect"})
SEQUENCER = "observer"  # a device executing the observer's command means a sequence runs
PublishCommand = Callable[[DeviceCommand], Awaitable[DeviceCommand]]  # returns the command as sent
log = structlog.get_logger("pyros.device_gateway")


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


def running_sequence(devices: Mapping[str, DeviceRecord]) -> list[str]:
    """The devices executing a command issued by the observer, as "<device> (<command>)"."""
    out = []
    for d in sorted(devices):
        last = devices[d].last
        if last is not None and last.values.get("issued_by") == SEQUENCER:
            out.append(f"{d} ({last.values.get('command', '?')})")
    return out


class ManualCommand(BaseModel):
    """An operator's command for one device (the device command grammar, plus force)."""

    command: str = Field(description="connect, status, abort, slew, park, unpark, offset, expose, ...")
    params: dict[str, Any] = Field(default_factory=dict, description="The command's parameters.")
    force: bool = Field(False, description="Send it even while a sequence runs.")
    timeout_s: float = Field(
        120.0, gt=0, le=86400, description="After this the command counts as failed [s]."
    )


class CommandAccepted(BaseModel):
    command_id: uuid.UUID = Field(
        description="Id of the published DeviceCommand; its status replies carry it."
    )
    device_id: str = Field(description="Device the command was sent to.")
    command: str = Field(description="The command.")
    forced: bool = Field(description="True when it was sent over a running sequence.")
    sent_at: datetime = Field(description="When it was published (UTC).")


async def _bus_publish(request: Request, cmd: DeviceCommand) -> DeviceCommand:
    """Publish through the app's context (the gateway's bus), stamped as the gateway's."""
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise ProblemError(503, "no bus to send the command on")
    stamped = cmd.stamped(producer="gateway", sent_at=ctx.clock.now())
    stamped = stamped.model_copy(update={"telescope_id": ctx.settings.telescope_id})
    await ctx.bus.publish(DeviceCommand.topic, stamped, cmd.device_id)
    return stamped


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


def routes(
    *,
    devices: DeviceSource,
    auth: Callable[..., Any] = current_user,
    operator_auth: Callable[..., Any] | None = None,
    publish: PublishCommand | None = None,
) -> APIRouter:
    """The devices routes over ``devices``.

    ``auth`` admits a caller (every route needs a token); ``operator_auth`` admits manual operations
    (default: admins and experts); ``publish`` sends a DeviceCommand (default: the app's bus).
    """
    operator = operator_auth or require_role("admin", "expert")
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

    @r.post(
        "/devices/{device_id}/commands",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=CommandAccepted,
        summary="Send a manual command to one device (admins, experts)",
        responses=problems(403, 409, 503),
    )
    async def send_command(
        device_id: str,
        body: ManualCommand,
        request: Request,
        user: Any = Depends(operator),  # a local dependency: Annotated cannot name it
    ) -> CommandAccepted:
        """Published on pyros.device.commands; refused (409) while a sequence runs unless ``force``."""
        known = devices.devices()
        d = known.get(device_id)
        if d is None:
            raise ProblemError(404, f"unknown device {device_id!r}; known: {sorted(known)}")
        accepted = (
            d.commands if d.commands is not None else COMMANDS_BY_KIND.get(d.kind, frozenset())
        ) | _ALWAYS
        if body.command not in accepted:
            raise ProblemError(
                422,
                f"{device_id} ({d.kind}) does not take {body.command!r}; it takes {sorted(accepted)}",
                errors=[("command", "not a command of this device")],
            )
        try:
            parse_params(body.command, body.params)
        except InvalidParams as exc:
            raise ProblemError(422, str(exc), errors=[("params", str(exc))]) from None
        running = running_sequence(known)
        if running and not body.force:
            raise ProblemError(
                409,
                f"a sequence is running ({', '.join(running)}); send force=true to command {device_id} anyway",
                kind="sequence-running",
            )
        cmd = DeviceCommand(
            device_id=device_id,
            command=body.command,
            params=body.params,
            timeout_s=body.timeout_s,
        )
        sent = await publish(cmd) if publish is not None else await _bus_publish(request, cmd)
        log.info(
            "manual command",
            device_id=device_id,
            command=body.command,
            command_id=str(cmd.command_id),
            forced=bool(running),
            user=getattr(user, "username", None),
        )
        return CommandAccepted(
            command_id=cmd.command_id,
            device_id=device_id,
            command=body.command,
            forced=bool(running),
            sent_at=sent.sent_at,
        )

    return r
