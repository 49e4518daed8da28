"""Factories of the observer tests: the real device-gateway and its simulators, the in-process bus, a SimulatedClock."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pyros_common.bus import InProcessBus
from pyros_common.clock import SimulatedClock
from pyros_common.contracts import (
    DeviceCommand,
    DeviceStatus,
    Dispatch,
    Event,
    ImageWritten,
    ObservationChanged,
    RequestChanged,
    SystemChanged,
)
from pyros_common.domain.requests.document import RequestDocument
from pyros_common.domain.sky.sites import get_site
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_device_gateway.app import DeviceGatewayService
from pyros_device_gateway.drivers.simulator import SimulatedObservatory
from pyros_observer.app import ObserverService
from pyros_observer.settings import ObserverSettings
from pyros_simulators import NIR, VIS
from pyros_simulators.astro import altaz_to_radec

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)  # 22:20 local at San Pedro Martir: night
NIGHT = date(2026, 2, 28)
SITE = get_site("gft-spm")


def target_at(alt: float = 60.0, az: float = 180.0) -> tuple[float, float]:
    return altaz_to_radec(alt, az, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=START)


def plan(
    filter_name: str, exposure_s: float, count: int, dithers: list[list[float]] | None = None
) -> dict[str, Any]:
    return {"filter": filter_name, "exposure_s": exposure_s, "count": count, "dither_arcsec": dithers or []}


def document(
    request_id: str,
    albums: list[dict[str, Any]],
    *,
    sequences: int = 1,
    alt: float = 60.0,
) -> RequestDocument:
    """A request as routines accepts it: every sequence carries its id ``<request>-s<n>``."""
    ra, dec = target_at(alt)
    return RequestDocument.model_validate(
        {
            "name": f"request {request_id}",
            "program": "GRB",
            "sequences": [
                {
                    "name": f"seq{n}",
                    "id": f"{request_id}-s{n}",
                    "target": {"name": f"T{request_id}", "ra_deg": ra, "dec_deg": dec},
                    "albums": albums,
                }
                for n in range(1, sequences + 1)
            ],
        }
    )


DEFAULT_ALBUMS = [
    {"detector": "VIS", "plans": [plan("r", 2.0, 2, [[0, 0], [10, 10]]), plan("g", 2.0, 2)]},
    {"detector": "NIR", "plans": [plan("J", 3.0, 2)]},
]


@dataclass
class Rig:
    clock: SimulatedClock
    bus: InProcessBus
    gateway: DeviceGatewayService
    observer: ObserverService
    sims: SimulatedObservatory
    data_dir: Path
    muted: set[str] = field(default_factory=set)  # devices whose commands the gateway never sees

    async def send(self, event: Event, producer: str) -> None:
        await self.bus.publish(type(event).topic, event.stamped(producer=producer, sent_at=self.clock.now()))
        await self.settle()

    async def settle(self) -> None:
        for _ in range(5):
            await self.bus.drain()
            for _ in range(10):
                await asyncio.sleep(0)

    async def accept(self, request_id: str, doc: RequestDocument, owner: str = "alice") -> None:
        await self.send(
            RequestChanged(
                request_id=request_id,
                action="accepted",
                state="accepted",
                owner=owner,
                program="GRB",
                document=doc,
            ),
            "routines",
        )

    async def dispatch(self, request_id: str, sequence_id: str, **kw: Any) -> None:
        now = self.clock.now()
        d = Dispatch(
            kind=kw.pop("kind", "sequence"),
            request_id=request_id,
            sequence_id=sequence_id,
            planned_start=now,
            planned_end=now + timedelta(hours=1),
            schedule_version=1,
            **kw,
        )
        state = "dawn" if d.kind == "calibration" else "running"  # as majordome sends them
        await self.send(SystemChanged(state=state, night=NIGHT, dispatch=d), "majordome")

    async def run_until(
        self, done: Callable[[], bool], *, max_s: float = 2000.0, step_s: float = 0.5
    ) -> None:
        """Advance simulated time until ``done()``; fail after ``max_s`` simulated seconds."""
        waited = 0.0
        while not done():
            assert waited < max_s, f"not done after {max_s} simulated seconds"
            self.clock.advance(step_s)
            waited += step_s
            await asyncio.sleep(0.001)
            await self.settle()

    # --- what went over the bus ----------------------------------------------------------

    def events(self, kind: type[Any]) -> list[Any]:
        return [kind.model_validate_json(v) for v in self.bus.log[kind.topic]]

    def observations(self, sequence_id: str | None = None) -> list[ObservationChanged]:
        obs = self.events(ObservationChanged)
        return [o for o in obs if sequence_id is None or o.sequence_id == sequence_id]

    def images(self, sequence_id: str | None = None) -> list[ImageWritten]:
        return [i for i in self.events(ImageWritten) if sequence_id is None or i.sequence_id == sequence_id]

    def commands(self) -> list[DeviceCommand]:
        return [c for c in self.events(DeviceCommand) if c.producer == "observer"]

    def statuses(self) -> list[DeviceStatus]:
        return self.events(DeviceStatus)

    def ended(self, sequence_id: str) -> bool:
        return any(o.action in ("completed", "failed", "interrupted") for o in self.observations(sequence_id))

    def final(self, sequence_id: str) -> ObservationChanged:
        ends = [
            o for o in self.observations(sequence_id) if o.action in ("completed", "failed", "interrupted")
        ]
        assert ends, f"{sequence_id} has not ended"
        return ends[-1]


def make_rig(tmp_path: Path, observer_settings: ObserverSettings | None = None) -> Rig:
    clock = SimulatedClock(START)
    bus = InProcessBus(clock=clock, retry_backoff_s=0.0)
    settings = Settings(data_dir=tmp_path, telescope_id="gft", site="gft-spm")
    sims = SimulatedObservatory.build(
        clock,
        SITE,
        vis=dataclasses.replace(VIS, shape=(64, 64)),
        nir=dataclasses.replace(NIR, shape=(64, 64)),
    )
    gateway = DeviceGatewayService(
        ServiceContext(bus=bus, clock=clock, settings=settings), drivers=sims.drivers()
    )
    observer = ObserverService(
        ServiceContext(bus=bus, clock=clock, settings=settings),
        observer_settings=observer_settings or ObserverSettings(),
    )
    rig = Rig(clock, bus, gateway, observer, sims, tmp_path)

    async def gated(event: Event) -> None:
        if isinstance(event, DeviceCommand) and event.device_id in rig.muted:
            return  # a device that never answers
        await gateway.handler.handle(event)

    bus.subscribe(DeviceCommand.topic, gateway.group, gated)
    for topic, handler in observer.subscriptions():
        bus.subscribe(topic, observer.group, handler)
    return rig
