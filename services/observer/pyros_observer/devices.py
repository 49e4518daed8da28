"""Commands to device-gateway and their replies: one future per command id, every wait bounded.

A command's last status carries ``done=True``; a reply that says ``ok=False`` or no reply within
the command's timeout (plus a grace for the gateway's own timeout reply) raises CommandFailed.
Statuses without a command id tell the devices' health; listeners hear about them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pyros_common.clock import Clock
from pyros_common.contracts import DeviceCommand, DeviceStatus, Event

log = structlog.get_logger("pyros.observer")

Send = Callable[[DeviceCommand], Awaitable[None]]
HealthListener = Callable[[DeviceStatus], None]
UNHEALTHY = frozenset({"offline", "error"})


class CommandFailed(Exception):
    """A command failed or got no answer; the message says which device, which command and why."""


@dataclass
class _Pending:
    device_id: str
    command: str
    owner: object
    reply: asyncio.Future[DeviceStatus]


class DeviceLink:
    """Sends commands, matches replies by command id, keeps each device's last health status."""

    def __init__(self, *, send: Send, clock: Clock, grace_s: float = 5.0) -> None:
        self._send = send
        self.clock = clock
        self.grace_s = grace_s
        self._pending: dict[uuid.UUID, _Pending] = {}
        self.health: dict[str, DeviceStatus] = {}  # last status without a command id
        self.last: dict[str, DeviceStatus] = {}  # last status of any kind (whoever's command)
        self._listeners: list[HealthListener] = []
        self.sent: list[DeviceCommand] = []  # every command, in order (inspection, tests)

    def on_health(self, listener: HealthListener) -> None:
        self._listeners.append(listener)

    def unhealthy(self, device_id: str) -> str | None:
        """Why ``device_id`` cannot work now (its last health status), or None."""
        st = self.health.get(device_id)
        if st is None or st.state not in UNHEALTHY:
            return None
        return f"{device_id} {st.state}" + (f": {st.error}" if st.error else "")

    def outstanding(self, owner: object) -> list[str]:
        """Devices with a command of ``owner`` still running, in the order they were sent."""
        out: list[str] = []
        for p in self._pending.values():
            if p.owner is owner and p.device_id not in out:
                out.append(p.device_id)
        return out

    async def run(
        self, device_id: str, command: str, params: dict[str, Any], *, timeout_s: float, owner: object = None
    ) -> DeviceStatus:
        """Send one command and return its last status; CommandFailed when it fails or times out."""
        cmd = DeviceCommand(device_id=device_id, command=command, params=params, timeout_s=timeout_s)
        reply: asyncio.Future[DeviceStatus] = asyncio.get_running_loop().create_future()
        self._pending[cmd.command_id] = _Pending(device_id, command, owner, reply)
        try:
            self.sent.append(cmd)
            await self._send(cmd)
            timer: asyncio.Future[Any] = asyncio.ensure_future(self.clock.sleep(timeout_s + self.grace_s))
            waiting: set[asyncio.Future[Any]] = {reply, timer}
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
            if not reply.done():
                raise CommandFailed(f"{device_id} did not answer {command} within {timeout_s:g} s")
            status = reply.result()
        finally:
            self._pending.pop(cmd.command_id, None)
        if not status.ok:
            raise CommandFailed(f"{device_id} {command} failed: {status.error or status.state}")
        return status

    async def fire(self, device_id: str, command: str, *, timeout_s: float = 10.0) -> None:
        """Send a command without waiting for its reply (abort)."""
        cmd = DeviceCommand(device_id=device_id, command=command, timeout_s=timeout_s)
        self.sent.append(cmd)
        await self._send(cmd)

    async def on_status(self, event: Event) -> None:
        """Handler of pyros.device.status."""
        if not isinstance(event, DeviceStatus):
            return
        self.last[event.device_id] = event
        if event.command_id is None:
            before = self.health.get(event.device_id)
            self.health[event.device_id] = event
            if before is None or before.state != event.state or event.state in UNHEALTHY:
                for listener in self._listeners:
                    try:
                        listener(event)
                    except Exception:
                        log.exception("health listener failed", device_id=event.device_id)
            return
        pending = self._pending.get(event.command_id)
        if pending is not None and event.done and not pending.reply.done():
            pending.reply.set_result(event)
