"""device-gateway settings (prefix ``PYROS_GATEWAY_``); the INDI endpoint lives in ``pyros_common.settings``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """Knobs of device-gateway, each read from ``PYROS_GATEWAY_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PYROS_GATEWAY_", extra="ignore")

    status_period_s: float = Field(5.0, gt=0, description="Periodic status of every device [s].")
    weather_period_s: float = Field(10.0, gt=0, description="Periodic status of the weather sources [s].")
    recent_commands: int = Field(4096, ge=16, description="Command ids remembered to drop duplicates.")
    horizon_limit_deg: float = Field(15.0, ge=0, lt=90, description="Lowest altitude a slew may go to [deg].")
    indi_telescope: str = Field(
        "Telescope Simulator",
        description="INDI device name of the mount when only PYROS_INDI_HOST is set (no [[devices]] in the site).",
    )
    simulator_seed: int = Field(0, description="Seed of the simulated weather.")
    reconnect_min_s: float = Field(1.0, gt=0, description="First wait before pinging an offline device [s].")
    reconnect_max_s: float = Field(
        60.0, gt=0, description="Longest wait between pings of an offline device [s]."
    )
    reconnect_poll_s: float = Field(
        1.0, gt=0, description="How often offline devices are checked for a ping [s]."
    )
