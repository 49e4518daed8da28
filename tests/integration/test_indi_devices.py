"""Every device kind over INDI: Debian's simulators behind a real indiserver, through the handler.

One sequence (unpark, slew, two filters, two exposures each) gives four FITS files with our headers
and a WCS; killing indiserver marks the devices offline, restarting it brings them back.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from astropy.wcs import WCS
from pyros_common.bus import InProcessBus
from pyros_common.clock import SystemClock
from pyros_common.contracts import DeviceCommand, DeviceStatus
from pyros_common.runtime.service import ServiceContext
from pyros_common.settings import Settings
from pyros_device_gateway.app import DeviceGatewayService
from pyros_device_gateway.settings import GatewaySettings
from pyros_simulators.astro import altaz_to_radec, separation_deg

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SIMULATORS = (
    "indi_simulator_telescope",
    "indi_simulator_ccd",
    "indi_simulator_wheel",
    "indi_simulator_focus",
    "indi_simulator_dome",
)
INDI_IDS = {"telescope", "cam-vis", "filterwheel", "focuser", "dome"}
SCALE_ARCSEC = 5.2e-3 / 900.0 * 206264.806  # the CCD simulator's 5.2 um pixels at the mount's 900 mm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class IndiServer:
    """indiserver with the five simulators on ``port``; its own local socket, so servers never clash."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("indiserver")
        missing = [x for x in ("indiserver", *SIMULATORS) if shutil.which(x) is None]
        if exe is None or missing:
            msg = f"{missing} not installed (apt-get install -y indi-bin)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(msg + " (CI=true: integration tests never skip)")
            pytest.skip(msg)
        self.proc = subprocess.Popen(
            [exe, "-u", f"/tmp/pyros-indi-{self.port}", "-p", str(self.port), *SIMULATORS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    pytest.fail(f"indiserver exited with {self.proc.returncode}")
                time.sleep(0.05)
        pytest.fail(f"indiserver does not listen on {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def indiserver() -> Iterator[IndiServer]:
    srv = IndiServer(_free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


def site_file(tmp_path: Path, port: int) -> Path:
    indi = f"127.0.0.1:{port}"
    path = tmp_path / "gft-indi.toml"
    path.write_text(
        f"""
[site]
id = "gft-spm"
lat_deg = 31.0439
lon_deg = -115.4637
height_m = 2800.0

[[telescopes]]
id = "gft"

[[devices]]
id = "telescope"
kind = "telescope"
driver = "indi"
indi = "{indi}"
indi_device = "Telescope Simulator"

[[devices]]
id = "cam-vis"
kind = "camera"
driver = "indi"
indi = "{indi}"
indi_device = "CCD Simulator"
instrument = "INDI CCD Simulator"

[[devices]]
id = "filterwheel"
kind = "filterwheel"
driver = "indi"
indi = "{indi}"

[[devices]]
id = "focuser"
kind = "focuser"
driver = "indi"
indi = "{indi}"

[[devices]]
id = "dome"
kind = "dome"
driver = "indi"
indi = "{indi}"
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Rig:
    svc: DeviceGatewayService
    bus: InProcessBus

    def statuses(self) -> list[DeviceStatus]:
        return [DeviceStatus.model_validate_json(v) for v in self.bus.log.get(DeviceStatus.topic, [])]

    async def run(
        self, device_id: str, command: str, timeout_s: float = 120.0, **params: Any
    ) -> DeviceStatus:
        """Send a command as the observer would, wait for its final reply."""
        cmd = DeviceCommand(device_id=device_id, command=command, params=params, timeout_s=timeout_s)
        cmd = cmd.stamped(producer="observer", sent_at=self.svc.clock.now())
        await self.bus.publish(DeviceCommand.topic, cmd, device_id)
        await self.bus.drain()
        await asyncio.wait_for(self.svc.handler.idle(), timeout_s + 10)
        await self.bus.drain()
        replies = [s for s in self.statuses() if s.command_id == cmd.command_id]
        assert replies, f"no reply to {command}"
        final = replies[-1]
        assert final.ok, f"{device_id} {command}: {final.error}"
        assert "issued_by" not in final.values  # the final reply ends the command
        return final

    async def wait_for(self, what: str, predicate: Any, timeout_s: float = 40.0) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            await self.bus.drain()
            if predicate():
                return
            await asyncio.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
async def rig(tmp_path: Path, indiserver: IndiServer) -> AsyncIterator[Rig]:
    clock = SystemClock()
    bus = InProcessBus(clock=clock)
    settings = Settings(
        data_dir=tmp_path / "data", telescope_id="gft", site=str(site_file(tmp_path, indiserver.port))
    )
    gs = GatewaySettings(status_period_s=0.5, reconnect_min_s=0.5, reconnect_max_s=2.0, reconnect_poll_s=0.2)
    svc = DeviceGatewayService(ServiceContext(bus=bus, clock=clock, settings=settings), gateway_settings=gs)
    for topic, handler in svc.subscriptions():
        bus.subscribe(topic, svc.group, handler)
    await bus.start()
    await svc.on_start()
    try:
        yield Rig(svc, bus)
    finally:
        await svc.on_stop()
        await bus.stop()


async def test_a_sequence_on_indi_then_indiserver_dies_and_comes_back(
    rig: Rig, indiserver: IndiServer, tmp_path: Path
) -> None:
    drivers = {d: dev.driver.driver for d, dev in rig.svc.handler.devices.items()}
    assert {d for d, drv in drivers.items() if drv == "indi"} == INDI_IDS
    assert drivers["cam-nir"] == "simulator" and drivers["weather"] == "simulator"  # not listed: simulated
    clients = {id(rig.svc.handler.devices[d].driver.client) for d in INDI_IDS}
    assert len(clients) == 1  # one client (one link) for every INDI device of the server

    await rig.run("telescope", "unpark")
    ra, dec = altaz_to_radec(60.0, 180.0, lat_deg=31.0439, lon_deg=-115.4637, when=rig.svc.clock.now())
    slewed = await rig.run("telescope", "slew", ra_deg=ra, dec_deg=dec)
    assert slewed.state == "idle" and slewed.ra_deg is not None and slewed.dec_deg is not None
    assert separation_deg(slewed.ra_deg, slewed.dec_deg, ra, dec) < 60 / 3600
    await rig.run("cam-vis", "cooler", setpoint_c=-5.0)

    images: list[tuple[Path, str, int]] = []
    for filt in ("Green", "Blue"):
        wheel = await rig.run("filterwheel", "set_filter", filter=filt)
        assert wheel.values["filter"] == filt
        for frame in (1, 2):
            final = await rig.run(
                "cam-vis",
                "expose",
                exposure_s=1.0,
                object="GRB 260301A",
                request_id="R7",
                sequence_id="S3",
                album_id="VIS",
                plan_id=f"plan-{1 if filt == 'Green' else 2}-{filt}",
                frame=len(images) + 1,
            )
            path = rig.svc.settings.data_dir / str(final.values["path"])
            images.append((path, filt, frame))
    paths = [p for p, _, _ in images]
    assert len(set(paths)) == 4 and all(p.is_file() for p in paths)
    assert not list(rig.svc.settings.data_dir.rglob("*.tmp"))  # written as .tmp, renamed when complete
    print("\nFITS files:\n  " + "\n  ".join(str(p) for p in paths))
    for k, (path, filt, _) in enumerate(images):
        h = fits.getheader(path)
        for key in ("DATE-OBS", "EXPTIME", "FILTER", "OBJECT", "RA", "DEC", "AIRMASS", "TELESCOP"):
            assert key in h, (path, key)
        assert h["FILTER"] == filt and h["EXPTIME"] == 1.0 and h["OBJECT"] == "GRB 260301A"
        assert h["TELESCOP"] == "gft" and h["INSTRUME"] == "INDI CCD Simulator" and h["IMAGETYP"] == "light"
        assert h["REQUEST"] == "R7" and h["SEQUENCE"] == "S3" and h["FRAMENUM"] == k + 1
        assert h["ALBUM"] == "VIS" and h["PLAN"] == f"plan-{1 if filt == 'Green' else 2}-{filt}"
        assert 1.0 <= h["AIRMASS"] < 1.3  # 60 degrees up: 1.15
        wcs = WCS(h)
        cra, cdec = (
            float(v) for v in wcs.pixel_to_world_values((h["NAXIS1"] - 1) / 2, (h["NAXIS2"] - 1) / 2)
        )
        assert separation_deg(cra, cdec, slewed.ra_deg, slewed.dec_deg) < 10 / 3600  # the mount's pointing
        assert separation_deg(cra, cdec, h["RA"], h["DEC"]) < 1e-6
        scales = wcs.proj_plane_pixel_scales()
        assert [float(s.to_value("arcsec")) for s in scales] == pytest.approx([SCALE_ARCSEC] * 2, rel=1e-3)
        right = wcs.pixel_to_world_values(h["NAXIS1"] - 1, (h["NAXIS2"] - 1) / 2)
        assert float(right[0]) < cra or float(right[0]) > cra + 180  # east is left: RA falls to the right
    excerpt = fits.getheader(paths[0])
    print(
        "header excerpt:\n"
        + "\n".join(
            str(card)
            for card in excerpt.cards
            if card.keyword
            in (
                "DATE-OBS",
                "EXPTIME",
                "FILTER",
                "OBJECT",
                "RA",
                "DEC",
                "AIRMASS",
                "TELESCOP",
                "INSTRUME",
                "IMAGETYP",
                "REQUEST",
                "SEQUENCE",
                "ALBUM",
                "PLAN",
                "CTYPE1",
                "CRVAL1",
                "CRVAL2",
                "CD1_1",
                "CD2_2",
            )
        )
    )

    # indiserver dies: every INDI device is published offline, saying why.
    killed_at = rig.svc.clock.now()
    indiserver.kill()

    def latest(device_id: str, since: Any) -> DeviceStatus | None:
        mine = [s for s in rig.statuses() if s.device_id == device_id and s.sent_at >= since]
        return mine[-1] if mine else None

    def all_offline() -> bool:
        out = [latest(d, killed_at) for d in INDI_IDS]
        return all(s is not None and s.state == "offline" and not s.ok and s.error for s in out)

    await rig.wait_for("every INDI device offline", all_offline, 15.0)
    offline = latest("telescope", killed_at)
    assert offline is not None and "indiserver" in offline.error, offline
    print(f"offline: {offline.error}")
    assert rig.svc.handler.devices["cam-nir"].connected  # the simulated devices are not affected

    # It comes back: the gateway reconnects by itself, the camera cools again, commands work.
    indiserver.start()
    back_at = rig.svc.clock.now()

    def all_back() -> bool:
        out = [latest(d, back_at) for d in INDI_IDS]
        return all(s is not None and s.ok and s.state in ("idle", "parked") for s in out)

    await rig.wait_for("every INDI device back", all_back, 40.0)
    cam = rig.svc.handler.devices["cam-vis"].driver
    client = cam.client
    assert client.connections == 2
    await rig.wait_for(
        "the camera cooling to its set point again",
        lambda: (
            (s := latest("cam-vis", back_at)) is not None
            and s.temperature_c is not None
            and s.temperature_c < 0.0
        ),
        15.0,
    )
    again = await rig.run(
        "cam-vis", "expose", exposure_s=1.0, object="after", request_id="R7", sequence_id="S3"
    )
    assert (rig.svc.settings.data_dir / str(again.values["path"])).is_file()
    await rig.run("filterwheel", "set_filter", filter="Red")


def test_probe_lists_the_devices_and_exercises_them(indiserver: IndiServer, tmp_path: Path) -> None:
    cli = [
        sys.executable,
        "-m",
        "pyros_cli.main",
        "devices",
        "probe",
        "--indi",
        f"127.0.0.1:{indiserver.port}",
    ]
    env = {**os.environ, "PYROS_DATA_DIR": str(tmp_path)}
    listed = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    kinds = {d["name"]: d["kind"] for d in report["devices"]}
    assert kinds == {
        "Telescope Simulator": "telescope",
        "CCD Simulator": "camera",
        "Filter Simulator": "filterwheel",
        "Focuser Simulator": "focuser",
        "Dome Simulator": "dome",
    }
    ccd = next(d for d in report["devices"] if d["name"] == "CCD Simulator")
    assert "ccd" in ccd["interfaces"] and isinstance(ccd["connected"], bool)

    done = subprocess.run(
        [*cli, "--exercise", "--out", str(tmp_path / "probe")],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    image = Path(done.stdout.strip().splitlines()[-1])
    assert image.is_file() and image.parent == tmp_path / "probe"
    h = fits.getheader(image)
    assert h["EXPTIME"] == 1.0 and h["CTYPE1"] == "RA---TAN" and h["FILTER"] == "Green"
    print(f"\nprobe image: {image}")
