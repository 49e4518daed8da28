"""device-gateway routes (mounted under /api/v1): the devices and their last status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field
from pyros_common.auth import current_user
from pyros_common.problem import ProblemRoute, problems

from pyros_device_gateway.handlers import CommandHandler, Device


class DevicePublic(BaseModel):
    device_id: str = Field(description="Device id, as in DeviceCommand.device_id.")
    kind: str = Field(description="Kind of device.")
    driver: str = Field(description="Driver behind it: simulator or indi.")
    commands: list[str] = Field(description="Commands it accepts.")
    state: str | None = Field(description="Last reported state, None before the first status.")
    ok: bool | None = Field(description="Last reported health.")
    error: str = Field("", description="Last error, if any.")
    updated_at: datetime | None = Field(description="When the last status was sent (UTC).")
    last_status: dict[str, Any] | None = Field(description="The last DeviceStatus event, as sent.")

    @classmethod
    def of(cls, d: Device) -> DevicePublic:
        last = d.last
        return cls(
            device_id=d.device_id,
            kind=d.driver.kind,
            driver=d.driver.driver,
            commands=sorted(d.driver.commands | {"status", "abort"}),
            state=last.state if last else None,
            ok=last.ok if last else None,
            error=last.error if last else "",
            updated_at=last.sent_at if last else None,
            last_status=last.model_dump(mode="json") if last else None,
        )


def build_router(*, handler: Callable[[], CommandHandler]) -> APIRouter:
    r = APIRouter(
        tags=["devices"],
        dependencies=[Depends(current_user)],
        route_class=ProblemRoute,
        responses=problems(401, 404, 422),
    )

    @r.get("/devices", response_model=list[DevicePublic], summary="Every device and its last status")
    def list_devices() -> list[DevicePublic]:
        return [DevicePublic.of(d) for d in handler().devices.values()]

    @r.get("/devices/{device_id}", response_model=DevicePublic, summary="One device and its last status")
    def get_device(device_id: str) -> DevicePublic:
        d = handler().devices.get(device_id)
        if d is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown device {device_id!r}")
        return DevicePublic.of(d)

    return r
