"""What every INDI driver shares: the INDI device behind a shared client, connection, and waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

from pyros_common.clock import Clock

from pyros_device_gateway.drivers.base import DeviceDriver, DriverError, Progress, Reading
from pyros_device_gateway.drivers.indi.client import IndiClient, IndiError, IndiVector


class IndiDriver(DeviceDriver):
    """One INDI device (``indi_device``, e.g. "CCD Simulator") on a client shared with the others."""

    driver = "indi"
    ready_property: ClassVar[str]  # defined by the INDI driver once the device is connected

    def __init__(
        self,
        device_id: str,
        client: IndiClient,
        *,
        indi_device: str,
        clock: Clock,
        timeout_s: float = 180.0,
        connect_timeout_s: float = 15.0,
    ) -> None:
        super().__init__(device_id)
        self.client = client
        self.indi_device = indi_device
        self.clock = clock
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s

    def _vec(self, name: str) -> IndiVector | None:
        return self.client.vector(self.indi_device, name)

    def _need(self, name: str) -> IndiVector:
        vec = self._vec(name)
        if vec is None:
            raise DriverError(
                f"{self.indi_device} has no property {name} (not connected, or not a {self.kind})"
            )
        return vec

    async def connect(self) -> None:
        """Open the shared link if needed, then CONNECT the INDI device and wait until it is usable."""
        try:
            await self.client.connect()
            await self.client.wait_for(
                lambda: self._vec("CONNECTION") is not None,
                self.connect_timeout_s,
                f"{self.indi_device} on indiserver {self.client.endpoint}",
            )
            if not self._need("CONNECTION").values.get("CONNECT"):
                await self.client.send_switches(
                    self.indi_device, "CONNECTION", {"CONNECT": True, "DISCONNECT": False}
                )
            await self.client.wait_for(
                lambda: self._vec(self.ready_property) is not None and self._device_connected(),
                self.connect_timeout_s,
                f"{self.indi_device} to connect",
            )
            await self._definitions_settled()
            await self.on_connected()
        except IndiError as exc:
            raise DriverError(str(exc)) from exc

    async def _definitions_settled(self, quiet_s: float = 0.3, longest_s: float = 3.0) -> None:
        """Wait until the device stops defining properties: a connected driver defines them in bursts."""
        loop = asyncio.get_running_loop()
        end = loop.time() + longest_s
        count = -1
        while loop.time() < end:
            now = sum(1 for d, _ in self.client.vectors if d == self.indi_device)
            if now == count:
                return
            count = now
            await asyncio.sleep(quiet_s)

    async def on_connected(self) -> None:
        """Set up the device once connected (enable BLOBs...); drivers override."""

    async def close(self) -> None:
        await self.client.close()

    def _device_connected(self) -> bool:
        conn = self._vec("CONNECTION")
        return conn is not None and conn.values.get("CONNECT") is True

    def offline(self) -> Reading | None:
        """The offline Reading when the link or the device is down, None when it is usable."""
        if not self.client.connected:
            return Reading(
                state="offline",
                ok=False,
                error=f"indiserver {self.client.endpoint}: {self.client.error or 'not connected'}",
            )
        if not self._device_connected() or self._vec(self.ready_property) is None:
            return Reading(state="offline", ok=False, error=f"{self.indi_device} is not connected")
        return None

    async def settle(
        self,
        name: str,
        generation: int,
        what: str,
        progress: Progress,
        reached: Callable[[IndiVector], bool] = lambda _v: True,
        *,
        need_busy: bool = False,
        timeout_s: float | None = None,
    ) -> IndiVector:
        """Wait until ``name`` has been updated after ``generation``, is no longer Busy and ``reached``.

        ``need_busy``: the device must have reported Busy first (a mount sends periodic Ok updates
        that must not be taken for the end of the slew). Alert fails with the device's message.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s

        def updated() -> bool:
            v = self._need(name)
            return v.generation > generation and (not need_busy or v.busy_generation > generation)

        def done() -> bool:
            v = self._need(name)
            return updated() and (v.state == "Alert" or (v.state != "Busy" and reached(v)))

        def alert() -> bool:
            v = self._need(name)
            return v.generation > generation and v.state == "Alert"

        try:
            await self.client.wait_for(lambda: updated() or alert(), timeout, f"{what} to start")
            if not done():
                await progress(await self.status())
                await self.client.wait_for(done, timeout, what)
        except IndiError as exc:
            raise DriverError(str(exc)) from exc
        vec = self._need(name)
        if vec.state == "Alert":
            raise DriverError(f"{self.indi_device} {name} failed: {vec.message or 'Alert'}")
        return vec

    def number(self, vec: str, element: str) -> float | None:
        v = self._vec(vec)
        if v is None:
            return None
        value = v.values.get(element)
        return value if isinstance(value, float) else None
