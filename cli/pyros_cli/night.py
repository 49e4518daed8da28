"""``pyros night --simulate``: a whole night of every service on a virtual clock (the digital twin).

Every service runs in this process on the in-process bus and SQLite, as in ``pyros up``, but
on a ``VirtualClock``: night time stands still while the services work and jumps to the next
deadline (a slew's end, an exposure's end, the next planned start) when all of them wait. So
a night takes minutes, and the latencies in the report are those of the design, not of this
machine. Requests go in through the REST API (in process, no socket), alerts through the
HTTP intake, re-timed to the instant asked for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UTC = dt.UTC


@dataclass(frozen=True)
class AlertSpec:
    """``packet.xml@HH:MM``: a VOEvent packet, re-timed so its burst happens at that UTC time."""

    path: Path
    at: dt.time
    raw: bytes = b""

    @classmethod
    def parse(cls, text: str) -> AlertSpec:
        path, sep, when = text.rpartition("@")
        if not sep or not path:
            raise ValueError(f"{text!r}: give PACKET.xml@HH:MM (UTC)")
        try:
            at = dt.time.fromisoformat(when)
        except ValueError:
            raise ValueError(f"{text!r}: {when!r} is not a time HH:MM[:SS] (UTC)") from None
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise ValueError(f"{text!r}: cannot read {p}: {exc.strerror}") from None
        return cls(p, at, raw)

    def instant(self, dusk: dt.datetime, dawn: dt.datetime) -> dt.datetime:
        """The one instant with this UTC time of day between dusk and dawn."""
        for day in (dusk.date(), dawn.date()):
            t = dt.datetime.combine(day, self.at, tzinfo=UTC)
            if dusk <= t <= dawn:
                return t
        raise ValueError(
            f"{self.at.isoformat()} UTC is not within the night ({dusk:%H:%M}..{dawn:%H:%M} UTC)"
        )


@dataclass(frozen=True)
class FaultSpec:
    """``device:fault@HH:MM``: a simulator fault (disconnect, hang, refuse, clear) at a UTC time."""

    device: str
    fault: str
    at: dt.time

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        what, sep, when = text.rpartition("@")
        device, colon, fault = what.partition(":")
        if not sep or not colon or fault not in ("disconnect", "hang", "refuse", "clear"):
            raise ValueError(f"{text!r}: give DEVICE:disconnect|hang|refuse|clear@HH:MM (UTC)")
        try:
            at = dt.time.fromisoformat(when)
        except ValueError:
            raise ValueError(f"{text!r}: {when!r} is not a time HH:MM[:SS] (UTC)") from None
        return cls(device, fault, at)

    def instant(self, dusk: dt.datetime, dawn: dt.datetime) -> dt.datetime:
        return AlertSpec(Path(), self.at).instant(dusk, dawn)


@dataclass
class NightRun:
    """What happened, gathered while the night runs."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    submitted: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0


class Progress:
    """One line on stderr: a bar of the night's time, the state and the images so far."""

    def __init__(self, start: dt.datetime, end: dt.datetime, enabled: bool) -> None:
        self.start, self.end, self.enabled = start, end, enabled
        self.last = -1

    def __call__(self, now: dt.datetime, status: str = "") -> None:
        if not self.enabled:
            return
        span = (self.end - self.start).total_seconds()
        frac = min(1.0, max(0.0, (now - self.start).total_seconds() / span))
        pct = int(frac * 100)
        tty = sys.stderr.isatty()
        if pct == self.last or (not tty and pct % 10 and pct != 100):
            return
        self.last = pct
        bar = "#" * (pct // 4) + "." * (25 - pct // 4)
        line = f"  night [{bar}] {pct:3d}%  {now:%H:%M} UTC  {status}"
        sys.stderr.write(f"\r{line:<80}" if tty else line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and sys.stderr.isatty():
            sys.stderr.write("\n")


async def simulate(
    *,
    site_name: str,
    date: dt.date,
    workload: dict[str, Any] | None,
    alerts: list[AlertSpec],
    report_dir: Path,
    faults: list[FaultSpec] | None = None,
    data_dir: Path,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the night of ``date`` at ``site_name``; write ``report.json`` and ``report.html``."""
    import time

    import httpx
    from prometheus_client import CollectorRegistry
    from pydantic import SecretStr
    from pyros_common.auth import token_for
    from pyros_common.bus.inprocess import InProcessBus
    from pyros_common.bus.metrics import BusMetrics
    from pyros_common.clock import VirtualClock, hold
    from pyros_common.db import Database
    from pyros_common.domain.sky.night import night_bounds
    from pyros_common.domain.sky.sites import get_site
    from pyros_common.runtime.host import ServiceHost
    from pyros_common.runtime.service import ServiceContext
    from pyros_common.settings import Settings
    from pyros_gateway.app import GatewayService
    from pyros_gateway.routes import ROUTES

    from pyros_cli.first_admin import ADMIN, ensure_first_admin
    from pyros_cli.night_report import build_report, write_report
    from pyros_cli.registry import SERVICE_CLASSES, service_class

    site = get_site(site_name)
    dusk, dawn = night_bounds(site, date)
    instants = [(a, a.instant(dusk, dawn)) for a in alerts]
    fault_times = [(f, f.instant(dusk, dawn)) for f in faults or []]
    db_path = data_dir / "pyros.db"
    settings = Settings(
        site=site_name,
        data_dir=data_dir,
        database_url=f"sqlite:///{db_path}",
        jwt_secret=SecretStr(uuid.uuid4().hex * 2),
        heartbeat_s=60.0,
    )
    start = dusk - dt.timedelta(minutes=30)
    end = dawn + dt.timedelta(minutes=45)
    clock = VirtualClock(start)
    registry = CollectorRegistry()
    metrics = BusMetrics(registry)
    bus = InProcessBus(metrics=metrics, clock=clock, retries=settings.bus_retries)
    db = Database(settings.database_url)
    db.upgrade()
    ctx = ServiceContext(
        bus=bus, clock=clock, settings=settings, db=db, registry=registry, bus_metrics=metrics
    )
    services = [service_class(n)(ctx) for n in SERVICE_CLASSES]
    gw = GatewayService(ctx, ROUTES)
    app = gw.create_app([*services, gw])
    ensure_first_admin(db, clock.now())
    run = NightRun()
    wall0 = time.monotonic()
    host = ServiceHost(ctx, [*services, gw])
    bar = Progress(dusk, dawn, progress)
    try:
        async with hold(clock):
            await host.start()
        token = token_for(db, ADMIN, settings=settings, now=clock.now())
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pyros", headers=headers) as api:
            async with hold(clock):
                await _seed(api, workload, run)
            sky = _simulated_sky(services)
            for svc in services:  # the analyzer's deep catalogue is the simulated sky
                if sky is not None and hasattr(svc, "use_sky"):
                    svc.use_sky(sky)
            tasks = [
                asyncio.create_task(_alert_at(api, clock, spec, when, run, sky)) for spec, when in instants
            ]
            tasks += [
                asyncio.create_task(_fault_at(services, clock, spec, when, run)) for spec, when in fault_times
            ]
            await clock.run(until=end, idle=bus.idle, on_tick=bar)
            for t in tasks:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        bar.done()
        async with hold(clock):
            await host.stop()
        run.wall_s = time.monotonic() - wall0
    report = build_report(
        bus_log=bus.log,
        run=run,
        site=site,
        night=date,
        dusk=dusk,
        dawn=dawn,
        data_dir=data_dir,
        telescope=settings.telescope_id,
    )
    write_report(report, report_dir, data_dir)
    db.dispose()
    s = report["sequences"]
    echo(
        f"night {date} at {site.name}: {s['scheduled']} sequences scheduled, {s['completed']} completed, "
        f"{s['interrupted']} interrupted, {s['failed']} failed; {report['images']} images "
        f"in {run.wall_s:.1f} s of wall time; report: {report_dir / 'report.html'}"
    )
    for a in report["alerts"]:
        echo(
            f"  alert {a['alert_id']}: received {a['received_at']}, slew command {a['slew_command_at']} "
            f"(+{a['alert_to_slew_s']} s), first image {a['first_image_at']}"
            + (
                f", our VOEvent {a['voevent_at']} (+{a['alert_to_voevent_s']} s)"
                if a.get("voevent_at")
                else ""
            )
        )
    return report


async def _seed(api: Any, workload: dict[str, Any] | None, run: NightRun) -> None:
    """Programs and routine requests of the workload, through the REST API."""
    if workload is None:
        return
    data = workload
    for p in data.get("programs", []):
        body = {"code": p["code"], "grade": p.get("grade", "C"), "quota_percent": p.get("quota_percent") or 0}
        r = await api.post("/api/v1/programs", json=body)
        if r.status_code not in (201, 409):
            raise RuntimeError(f"program {p['code']}: HTTP {r.status_code} {r.text}")
    for doc in data.get("requests", []):
        r = await api.post("/api/v1/requests", json=doc)
        entry = {"name": doc.get("name"), "status": r.status_code}
        if r.status_code == 201:
            entry["id"] = r.json()["id"]
        else:
            entry["reason"] = r.json().get("detail", r.text)
        run.submitted.append(entry)


async def _fault_at(
    services: list[Any], clock: Any, spec: FaultSpec, when: dt.datetime, run: NightRun
) -> None:
    """At ``when``, inject the fault into the simulator; device-gateway reads and publishes the
    device at once (as a real driver notices a dropped link)."""
    dg = next((s for s in services if getattr(s, "simulators", None) is not None), None)
    if dg is None:
        raise ValueError(f"--fault {spec.device}: no simulated devices (INDI site file?)")
    wait = (when - clock.now()).total_seconds()
    if wait > 0:
        await clock.sleep(wait)
    dg.simulators.inject(spec.device, spec.fault, f"pyros night --fault at {when:%H:%M} UTC")
    run.faults.append({"device": spec.device, "fault": spec.fault, "at": when.isoformat()})
    await dg.handler.publish_status(spec.device)


def _simulated_sky(services: list[Any]) -> Any:
    """The sky the simulated cameras see (device-gateway's simulators), or None (INDI devices)."""
    for s in services:
        sims = getattr(s, "simulators", None)
        if sims is not None and getattr(sims, "sky", None) is not None:
            return sims.sky
    return None


# The injected afterglow: magnitude one minute after the trigger, fading as t^-1.
AFTERGLOW_MAG_AT_60_S = 14.0


async def _alert_at(
    api: Any, clock: Any, spec: AlertSpec, when: dt.datetime, run: NightRun, sky: Any = None
) -> None:
    """At ``when`` of night time, post the packet re-timed to burst at that instant; on the
    simulators, a fading point source appears inside its error circle (the report records it)."""
    from pyros_alerts.domain.retime import retime
    from pyros_common.clock import hold

    wait = (when - clock.now()).total_seconds()
    if wait > 0:
        await clock.sleep(wait)
    async with hold(clock):
        pkt = retime(spec.path.name, spec.raw, when=when, tag=uuid.uuid4().hex)
        received = clock.now()
        r = await api.post(
            "/api/v1/alerts/voevents", content=pkt.xml, headers={"Content-Type": "application/xml"}
        )
    injected = None
    if sky is not None and pkt.ra_deg is not None and pkt.dec_deg is not None:
        from pyros_simulators.sky import point_in_error_circle

        radius = min(pkt.error_deg or 0.0, 0.05)  # inside the error circle and a GFT field
        ra, dec = point_in_error_circle(pkt.ra_deg, pkt.dec_deg, radius, seed=pkt.ivorn)
        sky.inject_transient(
            ra, dec, AFTERGLOW_MAG_AT_60_S, pkt.trigger_time, 1.0, ref_s=60.0, name=pkt.ivorn
        )
        injected = {
            "ra_deg": round(ra, 7),
            "dec_deg": round(dec, 7),
            "mag": AFTERGLOW_MAG_AT_60_S,
            "at_s": 60.0,
        }
    run.alerts.append(
        {
            "injected": injected,
            "packet": str(spec.path),
            "ivorn": pkt.ivorn,
            "mission": pkt.mission,
            "trigger_time": pkt.trigger_time.isoformat(),
            "ra_deg": pkt.ra_deg,
            "dec_deg": pkt.dec_deg,
            "error_deg": pkt.error_deg,
            "received_at": received.isoformat(),
            "http_status": r.status_code,
        }
    )


def coming_dusk(site_name: str, now: dt.datetime | None = None) -> dt.datetime:
    """The dusk of the night in progress (if it is night) or of the coming one."""
    from pyros_common.domain.sky.night import night_bounds, tonight
    from pyros_common.domain.sky.sites import get_site

    site = get_site(site_name)
    now = now or dt.datetime.now(UTC)
    dusk, _ = night_bounds(site, tonight(site, now))
    return dusk


async def seed_tonight(ctx: Any, app: Any, path: Path) -> int:
    """Submit ``path``'s programs and requests for tonight through the REST API (the demo)."""
    import httpx
    from pyros_common.auth import token_for

    from pyros_cli.first_admin import ADMIN

    data = json.loads(await asyncio.to_thread(path.read_text))
    for r in data.get("requests", []):
        for q in r.get("sequences", []):
            q["date"] = "tonight"
    token = token_for(ctx.db, ADMIN, settings=ctx.settings, now=ctx.clock.now())
    run = NightRun()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://pyros", headers={"Authorization": f"Bearer {token}"}
    ) as api:
        await _seed(api, data, run)
    return sum(1 for s in run.submitted if s["status"] == 201)


def prepare_dirs(report: Path, data_dir: Path | None) -> tuple[Path, Path]:
    """The report and data folders, made; a night is a fresh observatory (its old database goes)."""
    out = report.resolve()
    data = data_dir.resolve() if data_dir is not None else out / "data"
    out.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    (data / "pyros.db").unlink(missing_ok=True)
    return out, data


__all__ = ["AlertSpec", "FaultSpec", "prepare_dirs", "simulate"]
