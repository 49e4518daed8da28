"""Process wiring for ``pyros run`` and ``pyros up``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import signal
import socket
import uuid
from pathlib import Path

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pyros_common.bus.inprocess import InProcessBus
from pyros_common.bus.kafka import KafkaBus
from pyros_common.bus.metrics import BusMetrics
from pyros_common.clock import Clock, SimulatedClock, SystemClock
from pyros_common.db import Database
from pyros_common.runtime.host import ServiceHost
from pyros_common.runtime.http import HttpServer, service_app
from pyros_common.runtime.service import Service, ServiceContext
from pyros_common.settings import Settings
from pyros_gateway.app import GatewayService
from pyros_gateway.routes import ROUTES

from pyros_cli.registry import SERVICE_CLASSES, service_class

log = structlog.get_logger("pyros")


def kafka_context(settings: Settings, producer: str) -> ServiceContext:
    registry = CollectorRegistry()
    metrics = BusMetrics(registry)
    clock = SystemClock()
    bus = KafkaBus(
        bootstrap=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        partitions=settings.topic_partitions,
        replication=settings.topic_replication,
        metrics=metrics,
        clock=clock,
        producer=producer,
        retries=settings.bus_retries,
    )
    return ServiceContext(
        bus=bus,
        clock=clock,
        settings=settings,
        db=Database(settings.database_url),
        registry=registry,
        bus_metrics=metrics,
    )


def embedded_context(
    settings: Settings, clock: Clock | None = None, *, journal: Path | None = None
) -> ServiceContext:
    """One process, the in-process bus; ``journal``: the file that keeps what was published until
    every consumer handled it, so that a crash loses nothing acknowledged (``pyros up``)."""
    registry = CollectorRegistry()
    metrics = BusMetrics(registry)
    clock = clock or SystemClock()
    from pyros_common.bus.journal import BusJournal

    bus = InProcessBus(
        metrics=metrics,
        clock=clock,
        retries=settings.bus_retries,
        journal=BusJournal(journal) if journal is not None else None,
    )
    db = Database(settings.database_url)
    return ServiceContext(
        bus=bus, clock=clock, settings=settings, db=db, registry=registry, bus_metrics=metrics
    )


async def serve(
    ctx: ServiceContext, services: list[Service], app: FastAPI, host: str, port: int, ready_message: str = ""
) -> None:
    """Serve HTTP at once, start the services when their prerequisites are met, stop on a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http = HttpServer(app, host, port)
    try:
        await http.start()
    except (OSError, SystemExit, RuntimeError) as exc:
        raise SystemExit(
            f"pyros: cannot listen on {host}:{port} ({exc}); is another PyROS running?"
        ) from None
    host_ = ServiceHost(ctx, services)
    starting = asyncio.create_task(host_.start())
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if starting in done and starting.exception() is None:
        # Everything built at start (modules, tables, sites, strategies) lives as long as the
        # process: frozen out of the collector's sight, a full collection that falls while an
        # alert is handled no longer walks all of it (benchmarks/alert_to_slew.py, the p99).
        gc.collect()
        gc.freeze()
    if starting in done and starting.exception() is None and ready_message:
        log.info(ready_message)
        print(ready_message, flush=True)
    if starting in done and starting.exception() is not None:
        log.error("start failed", error=repr(starting.exception()))
        stop.set()
    await stop.wait()
    log.info("stopping: finishing in-flight events")
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    else:
        await host_.stop()
    waiter.cancel()
    await http.stop()
    if ctx.db is not None:
        ctx.db.dispose()


def run_service(name: str, settings: Settings) -> None:
    """``pyros run <service>``: one service on Kafka and PostgreSQL."""
    if name == "gateway":
        ctx = kafka_context(settings, "gateway")
        # The routes of every service, built from their factories; no service is built here.
        gw = GatewayService(ctx, ROUTES, group_suffix=f"-{socket.gethostname()}-{uuid.uuid4().hex[:6]}")
        app = gw.create_app([gw])
        asyncio.run(serve(ctx, [gw], app, settings.http_host, settings.http_port))
        return
    ctx = kafka_context(settings, name)
    svc = service_class(name)(ctx)
    app = service_app([svc], ctx.registry)
    asyncio.run(serve(ctx, [svc], app, settings.http_host, settings.http_port))


def run_embedded(
    settings: Settings,
    host: str,
    port: int,
    data_dir: Path,
    *,
    simulate_speed: float | None = None,
    demo_workload: Path | None = None,
) -> None:
    """``pyros up``: every service in one process, in-process bus, SQLite, gateway on ``port``.

    On a database without any user, it first makes the user ``admin`` with a random one-time
    password and prints it once, with the next commands, when the services are up.
    ``simulate_speed``: the clock starts just before the coming dusk and runs that many times
    faster than real time (``pyros up --simulate``); ``demo_workload``'s requests are then
    submitted for tonight on a new database, so that the telescope has work at once.
    """
    from pyros_cli.first_admin import ensure_first_admin, first_run_text
    from pyros_cli.local import DEFAULT_DATA_DIR

    data_dir.mkdir(parents=True, exist_ok=True)
    clock: Clock | None = None
    if simulate_speed is not None:
        from pyros_cli.night import coming_dusk

        clock = SimulatedClock(coming_dusk(settings.site) - dt.timedelta(seconds=60), speed=simulate_speed)
    ctx = embedded_context(settings, clock, journal=data_dir / "bus-journal.sqlite3")
    assert ctx.db is not None
    ctx.db.upgrade()
    password = ensure_first_admin(ctx.db, ctx.clock.now())
    demo = demo_workload if password is not None else None  # a new database only
    services = [service_class(n)(ctx) for n in SERVICE_CLASSES]
    gw = GatewayService(ctx, ROUTES)  # the same router factories as ``pyros run gateway``
    app = gw.create_app([*services, gw])
    from pyros_cli.night import _simulated_sky

    sky = _simulated_sky(services)
    for svc in services:  # simulated cameras: their sky is the analyzer's deep catalogue
        if sky is not None and hasattr(svc, "use_sky"):
            svc.use_sky(sky)
    for svc in services:  # the simulators' fault API lives with the simulators, in this process
        faults = getattr(svc, "faults_router", None)
        router = faults() if callable(faults) else None
        if router is not None:
            app.include_router(router, prefix="/api/v1")
    msg = f"PyROS is up: http://{host}:{port}/docs  (health: /api/v1/health, data: {data_dir})"
    everything: list[Service] = [*services, gw]
    if password is None:
        asyncio.run(serve(ctx, everything, app, host, port, ready_message=msg))
        return
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    block = first_run_text(url, password, None if data_dir == DEFAULT_DATA_DIR.resolve() else data_dir)
    asyncio.run(_serve_and_tell(ctx, everything, app, host, port, msg, block, demo))


async def _serve_and_tell(
    ctx: ServiceContext,
    services: list[Service],
    app: FastAPI,
    host: str,
    port: int,
    msg: str,
    block: str,
    demo: Path | None = None,
) -> None:
    """``serve``, printing ``block`` on stdout (never in the logs) once the services have started.

    If the process stops before that, the block is printed on the way out: it holds the only copy
    of the first admin's password.
    """
    from pyros_common.runtime.service import LifecycleState

    shown = False

    async def tell() -> None:
        nonlocal shown
        # ServiceHost offers no "started" event: look at the states it sets.
        while any(s.state is LifecycleState.STANDBY for s in services):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # after serve's "PyROS is up" line
        print(block, flush=True)
        shown = True
        if demo is not None:
            from pyros_cli.night import seed_tonight

            n = await seed_tonight(ctx, app, demo)
            print(f"simulation: {n} demo requests from {demo} submitted for tonight", flush=True)

    teller = asyncio.create_task(tell())
    try:
        await serve(ctx, services, app, host, port, ready_message=msg)
    finally:
        teller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await teller
        if not shown:
            print(block, flush=True)
