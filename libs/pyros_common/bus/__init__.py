"""The bus port and its two transports (Kafka, in-process)."""

from pyros_common.bus.inprocess import InProcessBus
from pyros_common.bus.metrics import BusMetrics
from pyros_common.bus.port import Bus, Handler, PoisonMessage, decode, encode

__all__ = ["Bus", "BusMetrics", "Handler", "InProcessBus", "PoisonMessage", "decode", "encode"]
