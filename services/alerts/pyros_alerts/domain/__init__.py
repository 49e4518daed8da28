"""Alerts domain: safe VOEvent parsing, one alert per event, strategies as data."""

from pyros_alerts.domain.matching import AlertBook, MatchPolicy
from pyros_alerts.domain.model import Alert, Citation, IngestResult, NormalizedPacket, RejectedPacket
from pyros_alerts.domain.parsing import MAX_PACKET_BYTES, parse_packet
from pyros_alerts.domain.strategies import (
    Strategy,
    StrategyError,
    build_request,
    list_strategies,
    load_strategies,
    pick_strategy,
    strategy_for_alert,
)

__all__ = [
    "MAX_PACKET_BYTES",
    "Alert",
    "AlertBook",
    "Citation",
    "IngestResult",
    "MatchPolicy",
    "NormalizedPacket",
    "RejectedPacket",
    "Strategy",
    "StrategyError",
    "build_request",
    "list_strategies",
    "load_strategies",
    "parse_packet",
    "pick_strategy",
    "strategy_for_alert",
]
