import asyncio
from pathlib import Path

import pytest
from pyros_common.bus import InProcessBus
from pyros_common.bus.kafka import KafkaBus
from pyros_common.clock import SystemClock
from pyros_common.contracts import Event, Heartbeat
from pyros_common.db import Database
from pyros_common.runtime.host import Prerequisite, ServiceHost
from pyros_common.runtime.service import LifecycleState, Service, ServiceContext
from pyros_common.settings import Settings


class Echo(Service):
    name = "echo"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self.got: list[Heartbeat] = []

    def subscriptions(self):  # type: ignore[no-untyped-def]
        return [(Heartbeat.topic, self.on_hb)]

    async def on_hb(self, ev: Event) -> None:
        assert isinstance(ev, Heartbeat)
        self.got.append(ev)


class Broken(Service):
    name = "broken"

    async def on_start(self) -> None:
        raise RuntimeError("camera cable unplugged")


def ctx_for(tmp_path: Path, bus=None) -> ServiceContext:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    return ServiceContext(
        bus=bus or InProcessBus(), clock=SystemClock(), settings=Settings(heartbeat_s=0.05), db=db
    )


async def test_services_become_enabled_and_publish_heartbeats(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    echo, broken = Echo(ctx), Broken(ctx)
    host = ServiceHost(ctx, [echo, broken])
    assert echo.state is LifecycleState.STANDBY
    await host.start()
    await asyncio.sleep(0.2)
    assert echo.state is LifecycleState.ENABLED
    assert broken.state is LifecycleState.FAULT and "camera cable" in broken.reason
    states = {(h.service, h.state) for h in echo.got}
    assert ("echo", "ENABLED") in states and ("broken", "FAULT") in states
    assert ctx.registry.get_sample_value("pyros_service_state", {"service": "broken", "state": "FAULT"}) == 1
    await host.stop()
    assert echo.state is LifecycleState.STANDBY


async def test_unreachable_kafka_is_one_sentence_naming_it_and_how_to_start_it(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path, bus=KafkaBus(bootstrap="127.0.0.1:1"))
    host = ServiceHost(ctx, [Echo(ctx)])
    with pytest.raises(Prerequisite) as err:
        await host.check_prerequisites()
    msg = str(err.value)
    assert "Kafka at 127.0.0.1:1 is unreachable" in msg and "scripts/kafka.sh start" in msg
    assert "\n" not in msg


async def test_unmigrated_database_says_to_run_the_migrations(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    ctx = ServiceContext(bus=InProcessBus(), clock=SystemClock(), settings=Settings(), db=db)
    host = ServiceHost(ctx, [Echo(ctx)])
    with pytest.raises(Prerequisite, match="run `pyros db upgrade`"):
        await host.check_prerequisites()
