"""Where each service's class lives (imported lazily, so one service's deps never load another's)."""

from __future__ import annotations

import importlib

from pyros_common.runtime.service import Service

SERVICE_CLASSES: dict[str, str] = {
    "alerts": "pyros_alerts.app:AlertsService",
    "routines": "pyros_routines.app:RoutinesService",
    "scheduler": "pyros_scheduler.app:SchedulerService",
    "majordome": "pyros_majordome.app:MajordomeService",
    "monitoring": "pyros_monitoring.app:MonitoringService",
    "observer": "pyros_observer.app:ObserverService",
    "analyzer": "pyros_analyzer.app:AnalyzerService",
    "device-gateway": "pyros_device_gateway.app:DeviceGatewayService",
}


def service_class(name: str) -> type[Service]:
    try:
        path = SERVICE_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; choose one of {', '.join(SERVICE_CLASSES)}") from None
    module, _, attr = path.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    assert isinstance(cls, type) and issubclass(cls, Service)
    return cls
