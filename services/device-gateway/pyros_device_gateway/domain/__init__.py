"""device-gateway domain: command parameters and their validation (no bus, no hardware)."""

from pyros_device_gateway.domain.commands import (
    PARAMS,
    CoolerParams,
    DomeParams,
    ExposeParams,
    FilterParams,
    FocusParams,
    InvalidParams,
    NoParams,
    OffsetParams,
    Params,
    SlewParams,
    parse_params,
)

__all__ = [
    "PARAMS",
    "CoolerParams",
    "DomeParams",
    "ExposeParams",
    "FilterParams",
    "FocusParams",
    "InvalidParams",
    "NoParams",
    "OffsetParams",
    "Params",
    "SlewParams",
    "parse_params",
]
