"""Routines settings (prefix ``PYROS_ROUTINES_``); the shared ones live in ``pyros_common.settings``."""

from __future__ import annotations

import datetime as dt

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RoutinesSettings(BaseSettings):
    """Knobs of the routines service, each read from ``PYROS_ROUTINES_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PYROS_ROUTINES_", extra="ignore")

    reset_token_hours: float = Field(24.0, gt=0, le=24 * 7, description="Life of a password reset token [h].")

    @property
    def reset_token_ttl(self) -> dt.timedelta:
        return dt.timedelta(hours=self.reset_token_hours)
