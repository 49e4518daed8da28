"""The device driver plugin interface: one driver per device, whatever talks to the hardware."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from pyros_device_gateway.domain import Params

DeviceKind = Literal["telescope", "camera", "filterwheel", "dome", "weather", "plc", "focuser"]
DeviceState = Literal["idle", "busy", "slewing", "exposing", "parked", "error", "offline"]


class DriverError(Exception):
    """The device refused or failed the command, or answered something we cannot read."""


@dataclass(frozen=True)
class Reading:
    """What a driver reports: the driver-neutral content of a DeviceStatus."""

    state: DeviceState
    ok: bool = True
    error: str = ""
    ra_deg: float | None = None
    dec_deg: float | None = None
    temperature_c: float | None = None
    values: dict[str, float | str | bool] = field(default_factory=dict)
    image: Path | None = None  # absolute path of the image an expose wrote


@dataclass(frozen=True)
class DriverCommand:
    """A validated command: the params are already the command's model."""

    name: str
    params: Params
    command_id: uuid.UUID
    image_path: Path | None = None  # where an expose writes (chosen by the gateway)


Progress = Callable[[Reading], Awaitable[None]]


async def no_progress(_reading: Reading) -> None:
    """A Progress that drops intermediate readings."""


class DeviceDriver(ABC):
    """Base of every driver: connect, execute a command, report status, close."""

    kind: ClassVar[DeviceKind]
    driver: ClassVar[str]  # "simulator", "indi", ...
    commands: ClassVar[frozenset[str]]  # what execute accepts besides status

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id

    @abstractmethod
    async def connect(self) -> None:
        """Open the link to the device; DriverError if it cannot be reached."""

    @abstractmethod
    async def execute(self, command: DriverCommand, progress: Progress = no_progress) -> Reading:
        """Run one command to completion; ``progress`` gets intermediate readings (slewing...).

        Raises DriverError when the device refuses or fails.
        """

    @abstractmethod
    async def status(self) -> Reading:
        """The device's current state, without changing it."""

    @abstractmethod
    async def close(self) -> None:
        """Release the link."""

    async def abort(self) -> Reading:
        """Stop the current command; drivers override when the device can stop."""
        raise DriverError(f"{self.device_id} cannot abort")
