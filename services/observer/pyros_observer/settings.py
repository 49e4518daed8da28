"""observer settings (prefix ``PYROS_OBSERVER_``): which device plays which part, focus table, timeouts."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Best-focus shift of each filter from CLEAR [focuser steps]: thicker glass moves the focus.
DEFAULT_FOCUS_OFFSETS: dict[str, int] = {
    "CLEAR": 0,
    "g": 120,
    "r": 80,
    "i": 60,
    "z": 40,
    "y": 30,
    "J": 0,
    "H": 0,
}


class ObserverSettings(BaseSettings):
    """Knobs of the observer, each read from ``PYROS_OBSERVER_<NAME>`` (dicts as JSON)."""

    model_config = SettingsConfigDict(env_prefix="PYROS_OBSERVER_", extra="ignore")
    document_wait_s: float = Field(
        5.0,
        ge=0,
        description="How long a dispatch waits for its request's accepted document, which reaches the "
        "observer on another topic and may come a little after the dispatch [s].",
    )

    telescope: str = Field("telescope", description="Device id of the mount.")
    cameras: dict[str, str] = Field(
        default_factory=lambda: {"VIS": "cam-vis", "NIR": "cam-nir"},
        description="Camera device id of each detector.",
    )
    filterwheels: dict[str, str] = Field(
        default_factory=lambda: {"VIS": "filterwheel"},
        description="Filter wheel device id of each detector; a detector without one only records the "
        "plan's filter (the simulated NIR camera has no wheel).",
    )
    focusers: dict[str, str] = Field(
        default_factory=lambda: {"VIS": "focuser", "NIR": "focuser"},
        description="Focuser device id of each detector (one shared focuser by default); a detector "
        "without one is not refocused.",
    )
    pointing_detector: str = Field(
        "VIS",
        description="The album that moves the telescope for its dithers (the other records the offset "
        "in use); the first album when the sequence has none of this detector.",
    )
    focus_base: int = Field(25_000, ge=0, description="Focuser position of best focus with CLEAR [steps].")
    focus_offsets: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_FOCUS_OFFSETS),
        description="Focus offset of each filter from CLEAR [steps]; a filter not listed gets 0.",
    )
    readout_s: float = Field(
        5.0, ge=0, description="Longest camera readout, added to an exposure's timeout [s]."
    )
    margin_s: float = Field(30.0, ge=0, description="Margin added to every exposure's timeout [s].")
    slew_timeout_s: float = Field(300.0, gt=0, description="Slew and settle [s].")
    unpark_timeout_s: float = Field(120.0, gt=0, description="Unpark [s].")
    offset_timeout_s: float = Field(60.0, gt=0, description="Dither offset [s].")
    filter_timeout_s: float = Field(60.0, gt=0, description="Filter change [s].")
    focus_timeout_s: float = Field(120.0, gt=0, description="Focus move [s].")
    reply_grace_s: float = Field(
        5.0, ge=0, description="Wait this long past a command's own timeout for device-gateway's reply [s]."
    )
    dark_exposure_s: float = Field(30.0, ge=0, description="Exposure of calibration darks [s].")
    flat_exposure_s: float = Field(5.0, ge=0, description="Exposure of calibration flats [s].")
