"""Alerts settings (prefix ``PYROS_ALERTS_``); the intake endpoints live in ``pyros_common.settings``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pyros_alerts.domain import MatchPolicy

# Subscribed as patterns: every current and future topic of these families.
GCN_TOPIC_PATTERNS: tuple[str, ...] = ("gcn.classic.voevent.*", "gcn.notices.svom.voevent.*")


class AlertsSettings(BaseSettings):
    """Knobs of the alerts service, each read from ``PYROS_ALERTS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PYROS_ALERTS_", extra="ignore")

    match_window_s: float = Field(60.0, ge=0, description="Cross-mission window when positions agree [s].")
    match_time_only_window_s: float = Field(
        10.0, ge=0, description="Cross-mission window without position [s]."
    )
    match_n_sigma: float = Field(3.0, gt=0, description="Error circles are widened to this many sigma.")
    gcn_topics: list[str] = Field(
        default_factory=lambda: list(GCN_TOPIC_PATTERNS),
        description="GCN Kafka topics; a trailing * subscribes to every topic with that prefix.",
    )
    gcn_topic_prefix: str = Field("", description="Prefix of the GCN topic names (tests on our own broker).")
    gcn_group: str = Field("pyros-alerts", description="Consumer group on the GCN feed.")
    vtp_local_ivo: str = Field("ivo://pyros/alerts", description="Our IVO identity in VTP replies.")
    vtp_backoff_max_s: float = Field(60.0, gt=0, description="Longest wait between VTP reconnections [s].")
    vtp_silence_s: float = Field(
        180.0,
        gt=0,
        description="Reconnect when the broker has sent nothing (not even iamalive) for this long [s].",
    )

    def policy(self) -> MatchPolicy:
        """The matching policy these settings describe."""
        return MatchPolicy(
            window_s=self.match_window_s,
            time_only_window_s=self.match_time_only_window_s,
            n_sigma=self.match_n_sigma,
        )
