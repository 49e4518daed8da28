"""The INDI driver: devices behind indiserver (XML over TCP, port 7624)."""

from pyros_device_gateway.drivers.indi.client import IndiClient, IndiError, IndiVector, parse_number
from pyros_device_gateway.drivers.indi.telescope import IndiTelescopeDriver

__all__ = ["IndiClient", "IndiError", "IndiTelescopeDriver", "IndiVector", "parse_number"]
