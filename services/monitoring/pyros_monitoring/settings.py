"""monitoring settings (prefix ``PYROS_MONITORING_``); the site file's ``[monitoring]`` table
may name the blocking devices (``blocking_devices = [...]``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pyros_monitoring.domain.weather import Limits, VoteConfig

# The devices whose failure stops observing, when the site file does not say (majordome's too).
DEFAULT_BLOCKING = ("cam-vis", "dome", "plc", "telescope")


class MonitoringSettings(BaseSettings):
    """Knobs of monitoring, each read from ``PYROS_MONITORING_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PYROS_MONITORING_", extra="ignore")

    stale_after_s: float = Field(
        30.0, gt=0, description="A device with no status for this long is UNKNOWN [s]."
    )
    blocking_devices: list[str] | None = Field(
        None,
        description="Devices whose failure makes the site unhealthy (default: the site file's, else "
        "telescope, plc, cam-vis, dome).",
    )
    weather_max_age_s: float = Field(60.0, gt=0, description="A source silent this long stops voting [s].")
    confirm_s: float = Field(60.0, ge=0, description="A single source's unsafe claim waits this long [s].")
    suspect_after_s: float = Field(
        300.0, ge=0, description="A source disagreeing with the others this long is suspect [s]."
    )
    reopen_after_s: float = Field(
        600.0, ge=0, description="Continuous safe period before reopening after unsafe (ACP: 10 min) [s]."
    )
    required: list[str] = Field(
        default_factory=lambda: ["rain", "clouds"],
        description="Quantities a voting source must measure for safe (unknown is not safe).",
    )
    wind_max_ms: float = Field(15.0, gt=0, description="Wind above this is unsafe [m/s].")
    humidity_max_pct: float = Field(85.0, gt=0, le=100, description="Humidity above this is unsafe [%].")
    overcast_above_c: float = Field(
        -15.0, description="Sky - ambient above this is overcast, and unsafe [°C]."
    )
    clear_below_c: float = Field(-25.0, description="Sky - ambient below this is a clear sky [°C].")
    evaluate_period_s: float = Field(5.0, gt=0, description="Re-evaluation of votes and staleness [s].")
    publish_period_s: float = Field(60.0, gt=0, description="Republish an unchanged verdict this often [s].")
    weather_file: Path | None = Field(
        None, description="A site weather station's JSON file (one object of readings), read as a source."
    )
    weather_file_period_s: float = Field(30.0, gt=0, description="How often the weather file is read [s].")

    def vote_config(self) -> VoteConfig:
        return VoteConfig(
            max_age_s=self.weather_max_age_s,
            confirm_s=self.confirm_s,
            suspect_after_s=self.suspect_after_s,
            reopen_after_s=self.reopen_after_s,
            required=tuple(self.required),  # type: ignore[arg-type]  # checked by VoteConfig
            limits=Limits(
                clear_below_c=self.clear_below_c,
                overcast_above_c=self.overcast_above_c,
                wind_max_ms=self.wind_max_ms,
                humidity_max_pct=self.humidity_max_pct,
            ),
        )

    def blocking(self, site: str) -> tuple[str, ...]:
        """The blocking devices: this setting, else the site file's ``[monitoring]``, else the default."""
        if self.blocking_devices is not None:
            return tuple(self.blocking_devices)
        path = Path(site)
        if path.suffix == ".toml" and path.is_file():
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("monitoring", {})
            listed = table.get("blocking_devices") if isinstance(table, dict) else None
            if listed is not None:
                if not isinstance(listed, list) or not all(isinstance(d, str) for d in listed):
                    raise ValueError(f"{site}: [monitoring].blocking_devices must be a list of device ids")
                return tuple(listed)
        return DEFAULT_BLOCKING
