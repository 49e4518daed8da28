"""Fault injection into the simulators over HTTP (admin/expert): disconnect, hang, refuse, clear.

    POST /simulators/{device_id}/faults  {"fault": "refuse", "reason": "filter wheel jammed"}

The router factory takes the simulators and the auth dependency; the gateway mounts it
under /api/v1 when device-gateway runs its simulators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from pyros_common.auth import require_role

from pyros_device_gateway.drivers.simulator import SimulatedObservatory, UnknownSimulator


class FaultCreate(BaseModel):
    """A fault to inject into one simulated device."""

    model_config = ConfigDict(extra="forbid")

    fault: Literal["disconnect", "hang", "refuse", "clear"] = Field(
        description="disconnect: the device stops answering; hang: its commands never finish; "
        "refuse: its commands fail with ``reason``; clear: remove every fault."
    )
    reason: str = Field("", max_length=200, description="Why (the error message of refuse and disconnect).")


class FaultPublic(BaseModel):
    """The faults a simulated device carries after the request."""

    device_id: str = Field(description="Simulated device id.")
    disconnected: bool = Field(description="The device answers neither status nor commands.")
    hung: bool = Field(description="Its commands never finish until cleared.")
    refusing: str | None = Field(description="Every command fails with this reason.")
    pending: int = Field(description="One-shot faults still queued.")


def simulator_faults_router(
    *,
    observatory: SimulatedObservatory,
    auth: Callable[..., Any] | None = None,
) -> APIRouter:
    """Routes of the fault API; ``auth`` defaults to admin or expert."""
    guard = auth if auth is not None else require_role("admin", "expert")
    r = APIRouter(prefix="/simulators", tags=["simulators"], dependencies=[Depends(guard)])

    @r.post("/{device_id}/faults", response_model=FaultPublic)
    async def inject_fault(device_id: str, body: FaultCreate) -> FaultPublic:
        """Inject a fault into a simulated device, or clear its faults."""
        try:
            state = observatory.inject(device_id, body.fault, body.reason)
        except UnknownSimulator as exc:
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=str(exc.args[0])) from None
        return FaultPublic(
            device_id=device_id,
            disconnected=state.disconnected,
            hung=state.hung,
            refusing=state.refusing,
            pending=state.pending,
        )

    @r.get("/{device_id}/faults", response_model=FaultPublic)
    async def get_faults(device_id: str) -> FaultPublic:
        """The faults a simulated device carries now."""
        try:
            state = observatory.device(device_id).faults
        except UnknownSimulator as exc:
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=str(exc.args[0])) from None
        return FaultPublic(
            device_id=device_id,
            disconnected=state.disconnected,
            hung=state.hung,
            refusing=state.refusing,
            pending=state.pending,
        )

    return r
