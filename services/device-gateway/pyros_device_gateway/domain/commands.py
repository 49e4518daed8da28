"""The one command grammar of every device, and the parameters each command takes.

    connect, status, abort                         every device
    slew(ra_deg, dec_deg), park, unpark,
    offset(dra_arcsec, ddec_arcsec)                telescope
    expose(exposure_s, image_type: light|bias|dark|flat, ...), cooler(setpoint_c)   camera
    set_filter(filter | position)                  filter wheel
    set_focus(position)                            focuser
    dome(action: open|close|goto|follow|unfollow)  dome

Parameters are validated here, before any device sees them.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# File-name safe: these end up in image paths, so no separators and no "..".
_SAFE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class InvalidParams(ValueError):
    """The command's params are malformed; the message says which and why."""


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NoParams(Params):
    """Commands without parameters (connect, status, abort, park, unpark)."""


class SlewParams(Params):
    ra_deg: float = Field(ge=0, lt=360, description="Target right ascension, ICRS [deg].")
    dec_deg: float = Field(ge=-90, le=90, description="Target declination, ICRS [deg].")


class OffsetParams(Params):
    dra_arcsec: float = Field(
        ge=-3600, le=3600, description="Offset in RA (on the sky, times cos dec) [arcsec]."
    )
    ddec_arcsec: float = Field(ge=-3600, le=3600, description="Offset in Dec [arcsec].")


class CoolerParams(Params):
    setpoint_c: float = Field(ge=-200, le=40, description="Sensor temperature to reach [°C].")


class ExposeParams(Params):
    exposure_s: float = Field(ge=0, le=3600, description="Exposure time [s].")
    filter: str | None = Field(None, max_length=20, description="Filter in the beam (default: the wheel's).")
    object: str = Field("", max_length=68, description="Target name for the OBJECT header.")
    ra_deg: float | None = Field(None, ge=0, lt=360, description="Pointing RA for the header [deg].")
    dec_deg: float | None = Field(None, ge=-90, le=90, description="Pointing Dec for the header [deg].")
    image_type: Literal["light", "bias", "dark", "flat"] = Field("light", description="Kind of frame.")
    name: str | None = Field(None, pattern=_SAFE, description="File stem (default: built from the ids).")
    request_id: str | None = Field(None, pattern=_SAFE, description="Request the image belongs to.")
    sequence_id: str | None = Field(None, pattern=_SAFE, description="Sequence the image belongs to.")
    album_id: str | None = Field(None, pattern=_SAFE, description="Album (detector) the image belongs to.")
    plan_id: str | None = Field(None, pattern=_SAFE, description="Plan the image belongs to.")
    frame: int = Field(0, ge=0, description="Frame number within the plan.")


class FilterParams(Params):
    filter: str | None = Field(None, min_length=1, max_length=20, description="Filter name.")
    position: int | None = Field(None, ge=0, description="Slot index.")

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.filter is None) == (self.position is None):
            raise ValueError("give exactly one of filter or position")
        return self


class FocusParams(Params):
    position: int = Field(ge=0, description="Focuser position [steps].")


class DomeParams(Params):
    action: Literal["open", "close", "goto", "follow", "unfollow"] = Field(description="What the dome does.")
    azimuth_deg: float | None = Field(None, ge=0, lt=360, description="Azimuth for goto [deg].")

    @model_validator(mode="after")
    def _azimuth_for_goto(self) -> Self:
        if (self.action == "goto") != (self.azimuth_deg is not None):
            raise ValueError("azimuth_deg is required for goto and only for goto")
        return self


PARAMS: dict[str, type[Params]] = {
    "connect": NoParams,
    "status": NoParams,
    "abort": NoParams,
    "slew": SlewParams,
    "park": NoParams,
    "unpark": NoParams,
    "offset": OffsetParams,
    "expose": ExposeParams,
    "cooler": CoolerParams,
    "set_filter": FilterParams,
    "set_focus": FocusParams,
    "dome": DomeParams,
}


def parse_params(command: str, params: dict[str, Any]) -> Params:
    """The validated params of ``command``; InvalidParams with a readable reason otherwise."""
    model = PARAMS.get(command)
    if model is None:
        raise InvalidParams(f"unknown command {command!r}")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        reasons = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "params"
            reasons.append(f"{where}: {err['msg']}")
        raise InvalidParams(f"invalid params for {command}: " + "; ".join(reasons)) from exc
