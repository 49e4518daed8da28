"""Routines settings (prefix ``PYROS_ROUTINES_``); the shared ones live in ``pyros_common.settings``."""

from __future__ import annotations

import datetime as dt

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RoutinesSettings(BaseSettings):
    """Knobs of the routines service, each read from ``PYROS_ROUTINES_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PYROS_ROUTINES_", extra="ignore")

    reset_token_hours: float = Field(24.0, gt=0, le=24 * 7, description="Life of a password reset token [h].")
    login_window_s: float = Field(300.0, gt=0, description="Window in which failed logins are counted [s].")
    login_failures_per_user: int = Field(
        5, ge=1, description="Failed logins of one user name in the window before 429."
    )
    login_failures_per_address: int = Field(
        20, ge=1, description="Failed logins from one client address in the window before 429."
    )

    @property
    def reset_token_ttl(self) -> dt.timedelta:
        return dt.timedelta(hours=self.reset_token_hours)
