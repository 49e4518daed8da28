"""device-gateway domain: command parameters and their validation (no bus, no hardware)."""

from pyros_device_gateway.domain.commands import (
    PARAMS,
    DomeParams,
    ExposeParams,
    FilterParams,
    FocusParams,
    InvalidParams,
    NoParams,
    Params,
    SlewParams,
    parse_params,
)

__all__ = [
    "PARAMS",
    "DomeParams",
    "ExposeParams",
    "FilterParams",
    "FocusParams",
    "InvalidParams",
    "NoParams",
    "Params",
    "SlewParams",
    "parse_params",
]
