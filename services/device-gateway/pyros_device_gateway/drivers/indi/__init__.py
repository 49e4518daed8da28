"""The INDI driver: devices behind indiserver (XML over TCP, port 7624), one shared client per server."""

from pyros_device_gateway.drivers.indi.camera import IndiCameraDriver, write_fits
from pyros_device_gateway.drivers.indi.client import (
    Blob,
    IndiClient,
    IndiError,
    IndiVector,
    interface_names,
    kind_of_interfaces,
    parse_number,
)
from pyros_device_gateway.drivers.indi.device import IndiDriver
from pyros_device_gateway.drivers.indi.others import IndiDomeDriver, IndiFilterWheelDriver, IndiFocuserDriver
from pyros_device_gateway.drivers.indi.telescope import IndiTelescopeDriver

__all__ = [
    "Blob",
    "IndiCameraDriver",
    "IndiClient",
    "IndiDomeDriver",
    "IndiDriver",
    "IndiError",
    "IndiFilterWheelDriver",
    "IndiFocuserDriver",
    "IndiTelescopeDriver",
    "IndiVector",
    "interface_names",
    "kind_of_interfaces",
    "parse_number",
    "write_fits",
]
