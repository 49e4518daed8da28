"""Consumer of pyros.device.commands: dedupe, validate, route to the driver, publish DeviceStatus.

A device whose link is lost is offline (state "offline", ok false, the error says why); the status
saying so is published, and the device is pinged again with a growing backoff until it answers,
then re-initialised (a camera cools to its set point again). While a device executes a command,
every status it publishes names the command and who issued it (``values["command"]``,
``values["issued_by"]``): that is how the API knows a sequence runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from pydantic import ValidationError
from pyros_common.clock import Clock
from pyros_common.contracts import DeviceCommand, DeviceStatus, Event
from pyros_common.domain.sky.sites import Site

from pyros_device_gateway.domain import CoolerParams, ExposeParams, InvalidParams, parse_params
from pyros_device_gateway.drivers import DeviceDriver, DeviceKind, DriverCommand, DriverError, Reading

log = structlog.get_logger("pyros.device_gateway")

Publish = Callable[[DeviceStatus, str | None], Awaitable[None]]
_ALWAYS = frozenset({"status", "abort"})  # answered at once, never queued behind a running command
SEQUENCER = "observer"  # the service whose commands make up a sequence (manual operations wait for it)


@dataclass
class Device:
    """One routed device: its driver, its last status, one command at a time."""

    device_id: str
    driver: DeviceDriver
    last: DeviceStatus | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connected: bool = False
    running: DeviceCommand | None = None  # the command being executed, with its envelope (producer)
    offline_reason: str = ""
    retry_at: datetime | None = None  # while offline: the next time the link is tried
    backoff_s: float = 0.0
    attempts: int = 0  # connection attempts since it went offline
    setpoint: CoolerParams | None = None  # re-applied after a reconnection
    connecting: asyncio.Lock = field(default_factory=asyncio.Lock)


def night_of(site: Site, when: datetime) -> str:
    """The night a time belongs to, named by the local date of its evening (local noon to noon)."""
    local = when + timedelta(hours=site.lon_deg / 15.0) - timedelta(hours=12)
    return local.date().isoformat()


def guess_kind(device_id: str) -> DeviceKind:
    """Kind of a device we do not know, for the rejection reply (DeviceStatus needs one)."""
    for prefix, kind in (
        ("cam", "camera"),
        ("set_filter", "filterwheel"),
        ("dome", "dome"),
        ("set_focus", "focuser"),
    ):
        if device_id.startswith(prefix):
            return kind  # type: ignore[return-value]
    if device_id.startswith(("weather", "cloud")):
        return "weather"
    return "telescope" if device_id.startswith(("tel", "mount")) else "plc"


class CommandHandler:
    """Executes each command once per command id, serialised per device, abort/status excepted."""

    def __init__(
        self,
        *,
        drivers: Mapping[str, DeviceDriver],
        clock: Clock,
        site: Site,
        data_dir: Path,
        publish: Publish,
        recent_commands: int = 4096,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        producer: str = "device-gateway",
    ) -> None:
        self.devices = {d: Device(d, drv) for d, drv in drivers.items()}
        self.clock = clock
        self.site = site
        self.data_dir = data_dir
        self._publish = publish
        self._recent: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._max_recent = recent_commands
        self._tasks: set[asyncio.Task[None]] = set()
        self.duplicates = 0
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.producer = producer

    # --- bus handler --------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Handler of pyros.device.commands: returns once the command is accepted, not finished.

        Long commands run in their own task so that an abort can reach a slewing mount.
        """
        if not isinstance(event, DeviceCommand):
            return
        cmd = event
        if cmd.command_id in self._recent:
            self.duplicates += 1
            log.info("duplicate command dropped", command_id=str(cmd.command_id), device_id=cmd.device_id)
            return
        self._recent[cmd.command_id] = None
        while len(self._recent) > self._max_recent:
            self._recent.popitem(last=False)

        dev = self.devices.get(cmd.device_id)
        if dev is None:
            await self._reply_error(
                cmd,
                guess_kind(cmd.device_id),
                "offline",
                f"unknown device {cmd.device_id!r}; known: {sorted(self.devices)}",
            )
            return
        age_s = (self.clock.now() - cmd.sent_at).total_seconds()
        if cmd.producer and cmd.command not in ("status", "abort") and abs(age_s) > cmd.timeout_s:
            # A command delivered again after a restart (the bus is at-least-once) must not move
            # hardware hours later: past its timeout it has failed for whoever sent it.
            await self._reply_error(
                cmd,
                dev.driver.kind,
                self._state(dev),
                f"stale command: sent at {cmd.sent_at.isoformat()}, {age_s:.0f} s from now, "
                f"beyond its {cmd.timeout_s:g} s timeout; not executed",
            )
            return
        try:
            params = parse_params(cmd.command, cmd.params)
        except InvalidParams as exc:
            await self._reply_error(cmd, dev.driver.kind, self._state(dev), str(exc))
            return
        if cmd.command not in dev.driver.commands | _ALWAYS | {"connect"}:
            await self._reply_error(
                cmd,
                dev.driver.kind,
                self._state(dev),
                f"{cmd.device_id} ({dev.driver.kind}) does not support {cmd.command}; "
                f"it takes {sorted(dev.driver.commands | _ALWAYS | {'connect'})}",
            )
            return
        if cmd.command == "status":
            await self.publish_status(dev.device_id, cmd)
            return
        if cmd.command == "abort":
            await self._abort(dev, cmd)
            return
        if cmd.command == "connect":
            task = asyncio.create_task(self._reconnect(dev, cmd), name=f"cmd-{cmd.command_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        image_path = self.image_path(cmd, params) if isinstance(params, ExposeParams) else None
        dc = DriverCommand(name=cmd.command, params=params, command_id=cmd.command_id, image_path=image_path)
        task = asyncio.create_task(self._execute(dev, cmd, dc), name=f"cmd-{cmd.command_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every accepted command has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def cancel_all(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.idle()

    # --- execution ----------------------------------------------------------------------

    def busy(self) -> dict[str, DeviceCommand]:
        """The devices executing a command now, and that command."""
        return {d: dev.running for d, dev in self.devices.items() if dev.running is not None}

    def sequence_running(self) -> bool:
        """True while any device executes a command issued by the observer (a sequence runs)."""
        return any(c.producer == SEQUENCER for c in self.busy().values())

    async def _execute(self, dev: Device, cmd: DeviceCommand, dc: DriverCommand) -> None:
        async with dev.lock:
            dev.running = cmd
            try:
                await self._execute_locked(dev, cmd, dc)
            finally:
                dev.running = None

    async def _execute_locked(self, dev: Device, cmd: DeviceCommand, dc: DriverCommand) -> None:
        if not dev.connected:  # an explicit command tries the link now, whatever the backoff
            await self.read(dev, force_connect=True)
            if not dev.connected:
                dev.running = None
                await self._reply_failure(dev, cmd, f"{dev.device_id} is offline: {dev.offline_reason}")
                return

        async def progress(reading: Reading) -> None:
            await self._send(dev, reading, cmd)

        work = asyncio.ensure_future(dev.driver.execute(dc, progress))
        timer = asyncio.ensure_future(self.clock.sleep(cmd.timeout_s))
        try:
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
        dev.running = None  # the replies below are the end of the command, not progress
        try:
            if work.cancelled():
                raise DriverError(f"{cmd.command} timed out after {cmd.timeout_s:g} s")
            reading = work.result()
        except DriverError as exc:
            await self._reply_failure(dev, cmd, str(exc))
            return
        except Exception as exc:  # a driver bug or an unreadable device must still get a reply
            log.exception("driver failed", device_id=dev.device_id, command=cmd.command)
            await self._reply_failure(dev, cmd, f"driver failure: {exc!r}")
            return
        if isinstance(dc.params, CoolerParams) and reading.ok:
            dev.setpoint = dc.params
        if reading.image is not None:
            values = dict(reading.values)
            values["path"] = self._relative(reading.image)
            reading = Reading(
                state=reading.state,
                ok=reading.ok,
                error=reading.error,
                ra_deg=reading.ra_deg,
                dec_deg=reading.dec_deg,
                temperature_c=reading.temperature_c,
                values=values,
                image=reading.image,
            )
        await self._send(dev, reading, cmd)

    async def _abort(self, dev: Device, cmd: DeviceCommand) -> None:
        try:
            reading = await dev.driver.abort()
        except DriverError as exc:
            await self._reply_failure(dev, cmd, str(exc))
            return
        await self._send(dev, reading, cmd)

    # --- status -------------------------------------------------------------------------

    async def read(self, dev: Device, *, force_connect: bool = False) -> Reading:
        """The driver's status; never raises.

        An offline device is connected again only when its backoff has run out (or ``force_connect``);
        until then its offline reading is answered without touching the device.
        """
        if not dev.connected:
            due = dev.retry_at is None or self.clock.now() >= dev.retry_at
            if not (due or force_connect):
                return self._offline(dev)
            try:
                await self._initialise(dev)
            except DriverError as exc:
                self._lost(dev, str(exc))
                return self._offline(dev)
            except Exception as exc:
                log.exception("connect failed", device_id=dev.device_id)
                self._lost(dev, f"driver failure: {exc!r}")
                return self._offline(dev)
        try:
            reading = await dev.driver.status()
        except DriverError as exc:
            self._lost(dev, str(exc))
            return self._offline(dev)
        except Exception as exc:
            log.exception("status failed", device_id=dev.device_id)
            return Reading(state="error", ok=False, error=f"driver failure: {exc!r}")
        if reading.state == "offline":  # the driver noticed the loss: connect again, with backoff
            self._lost(dev, reading.error or f"{dev.device_id} is offline")
            return self._offline(dev)
        return reading

    def _offline(self, dev: Device) -> Reading:
        return Reading(state="offline", ok=False, error=dev.offline_reason or f"{dev.device_id} is offline")

    def _lost(self, dev: Device, reason: str) -> None:
        """Mark ``dev`` offline and schedule the next attempt (backoff doubles up to the maximum)."""
        if dev.connected or dev.retry_at is None:
            log.warning("device offline", device_id=dev.device_id, reason=reason)
            dev.backoff_s = self.reconnect_min_s
        else:
            dev.backoff_s = min(max(dev.backoff_s * 2.0, self.reconnect_min_s), self.reconnect_max_s)
        dev.connected = False
        dev.offline_reason = reason
        dev.retry_at = self.clock.now() + timedelta(seconds=dev.backoff_s)

    async def _initialise(self, dev: Device) -> None:
        """Connect the driver and restore what the device must be doing (the cooler's set point)."""
        async with dev.connecting:
            if dev.connected:
                return
            dev.attempts += 1
            await dev.driver.connect()
            if dev.setpoint is not None and "cooler" in dev.driver.commands:
                await dev.driver.execute(DriverCommand("cooler", dev.setpoint, uuid.uuid4()))
            if dev.retry_at is not None:
                log.info("device back online", device_id=dev.device_id, attempts=dev.attempts)
            dev.connected = True
            dev.retry_at = None
            dev.backoff_s = 0.0
            dev.attempts = 0
            dev.offline_reason = ""

    async def reconnect_due(self) -> list[str]:
        """Ping every offline device whose backoff has run out, publishing what it says; their ids."""
        now = self.clock.now()
        due = [
            d
            for d, dev in self.devices.items()
            if not dev.connected and dev.retry_at is not None and now >= dev.retry_at
        ]
        for device_id in due:
            await self.publish_status(device_id)
        return due

    async def _reconnect(self, dev: Device, cmd: DeviceCommand) -> None:
        """The connect command: drop the link and open it again, now."""
        async with dev.lock:
            if dev.connected:
                with contextlib.suppress(Exception):
                    await dev.driver.close()
                self._lost(dev, "reconnecting on request")
            await self._send(dev, await self.read(dev, force_connect=True), cmd)

    async def publish_status(self, device_id: str, cmd: DeviceCommand | None = None) -> DeviceStatus:
        """Read and publish the status of one device (periodic, or in answer to ``cmd``)."""
        dev = self.devices[device_id]
        return await self._send(dev, await self.read(dev), cmd)

    def _state(self, dev: Device) -> str:
        return dev.last.state if dev.last is not None else "idle"

    def status_of(self, dev: Device, reading: Reading, cmd: DeviceCommand | None) -> DeviceStatus:
        """The DeviceStatus event for a reading; a reading that fails validation becomes an error reply."""
        command_id = cmd.command_id if cmd is not None else None
        try:
            return DeviceStatus(
                device_id=dev.device_id,
                kind=dev.driver.kind,
                state=reading.state,
                command_id=command_id,
                ok=reading.ok,
                error=reading.error,
                ra_deg=reading.ra_deg,
                dec_deg=reading.dec_deg,
                temperature_c=reading.temperature_c,
                values=reading.values,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return DeviceStatus(
                device_id=dev.device_id,
                kind=dev.driver.kind,
                state="error",
                command_id=command_id,
                ok=False,
                error=f"malformed device reply rejected: {where}: {first['msg']}",
            )

    async def _send(self, dev: Device, reading: Reading, cmd: DeviceCommand | None) -> DeviceStatus:
        if dev.running is not None:
            values = dict(reading.values)
            values["command"] = dev.running.command
            values["issued_by"] = dev.running.producer or "unknown"
            reading = replace(reading, values=values)
        # Kept as it is sent: the envelope's time and producer (never 1970-01-01, never anonymous).
        # A command's last status (dev.running cleared: finished or failed) says so with done.
        done = cmd is not None and cmd.command != "status" and dev.running is None
        status = self.status_of(dev, reading, cmd).model_copy(
            update={"sent_at": self.clock.now(), "producer": self.producer, "done": done}
        )
        dev.last = status
        await self._publish(status, cmd.correlation_id if cmd is not None and cmd.correlation_id else None)
        return status

    async def _reply_failure(self, dev: Device, cmd: DeviceCommand, error: str) -> None:
        reading = await self.read(dev)
        await self._send(
            dev,
            Reading(
                state=reading.state,
                ok=False,
                error=error,
                ra_deg=reading.ra_deg,
                dec_deg=reading.dec_deg,
                temperature_c=reading.temperature_c,
                values=reading.values,
            ),
            cmd,
        )

    async def _reply_error(self, cmd: DeviceCommand, kind: DeviceKind, state: str, error: str) -> None:
        log.warning("command rejected", device_id=cmd.device_id, command=cmd.command, reason=error)
        status = DeviceStatus(
            device_id=cmd.device_id,
            kind=kind,
            state=state,
            command_id=cmd.command_id,
            done=True,
            ok=False,
            error=error,
        )
        await self._publish(status, cmd.correlation_id or None)

    # --- images -------------------------------------------------------------------------

    def image_path(self, cmd: DeviceCommand, p: ExposeParams) -> Path:
        """data_dir/images/<night>/<device>/<stem>.fits; never overwrites an existing image."""
        now = self.clock.now()
        if p.name:
            stem = p.name
        elif p.request_id:
            stem = "_".join(x for x in (p.request_id, p.sequence_id or "", f"{p.frame:04d}") if x)
        else:
            stem = f"{now:%Y%m%dT%H%M%S}_{p.image_type}"
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{cmd.device_id}_{stem}")
        folder = self.data_dir / "images" / night_of(self.site, now) / cmd.device_id
        path = folder / f"{stem}.fits"
        if path.exists():
            path = folder / f"{stem}_{cmd.command_id.hex[:8]}.fits"
        return path

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.data_dir))
        except ValueError:
            return str(path)
