"""Device drivers: the base interface, and one folder per implementation (simulator, indi)."""

from pyros_device_gateway.drivers.base import (
    DeviceDriver,
    DeviceKind,
    DeviceState,
    DriverCommand,
    DriverError,
    Progress,
    Reading,
    no_progress,
)

__all__ = [
    "DeviceDriver",
    "DeviceKind",
    "DeviceState",
    "DriverCommand",
    "DriverError",
    "Progress",
    "Reading",
    "no_progress",
]
