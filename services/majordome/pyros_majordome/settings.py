"""majordome settings (prefix ``PYROS_MAJORDOME_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pyros_majordome.domain.dispatch import DEFAULT_BLOCKING


class MajordomeSettings(BaseSettings):
    """Knobs of majordome, each read from ``PYROS_MAJORDOME_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PYROS_MAJORDOME_", extra="ignore")

    blocking_devices: list[str] = Field(
        default_factory=lambda: sorted(DEFAULT_BLOCKING),
        description="Devices whose failure pauses observing (others only drop their albums).",
    )
    telescope: str = Field("telescope", description="Device id of the mount.")
    dome: str = Field("dome", description="Device id of the dome.")
    cameras: list[str] = Field(default_factory=lambda: ["cam-vis", "cam-nir"], description="Camera ids.")
    calibration_frames: dict[str, int] = Field(
        default_factory=lambda: {"bias": 5, "dark": 5}, description="Frames taken at dawn, per type."
    )
    calibration_timeout_s: float = Field(1800.0, gt=0, description="Longest wait for the dawn frames [s].")
    close_check_timeout_s: float = Field(
        300.0, gt=0, description="Longest wait for dome and mount closed [s]."
    )
    assume_safe_without_conditions: bool = Field(
        True,
        description="Until monitoring publishes a verdict on pyros.conditions, count the weather as safe "
        "(monitoring is not built yet; a site with it sets this to false).",
    )
