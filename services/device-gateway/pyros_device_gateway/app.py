"""The device-gateway service: wiring of its handlers, routes and background work."""

from __future__ import annotations

from pyros_common.runtime.service import Service


class DeviceGatewayService(Service):
    """device-gateway (lifecycle, heartbeat, health and metrics; its domain arrives with its own issue)."""

    name = "device-gateway"
    needs_db = True
