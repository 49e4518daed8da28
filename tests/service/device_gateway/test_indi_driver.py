"""The INDI client on crafted XML, and the INDI telescope driver against a real indiserver."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from xml.etree.ElementTree import fromstring

import pytest
from pyros_common.clock import SystemClock
from pyros_common.domain.sky.sites import get_site
from pyros_device_gateway.domain import NoParams, SlewParams
from pyros_device_gateway.drivers import DriverCommand, DriverError, Reading
from pyros_device_gateway.drivers.indi import IndiClient, IndiTelescopeDriver, parse_number
from pyros_simulators.astro import altaz_to_radec, separation_deg

SITE = get_site("gft-spm")
DEV = "Telescope Simulator"


def test_numbers_decimal_and_sexagesimal() -> None:
    assert parse_number(" 12.5 ") == 12.5
    assert parse_number("-12:30:00") == pytest.approx(-12.5)
    assert parse_number("5 15") == pytest.approx(5.25)
    for bad in ("", "abc", "nan", "1:2:3:4"):
        with pytest.raises(ValueError):
            parse_number(bad)


def test_def_set_and_malformed_vectors() -> None:
    c = IndiClient("127.0.0.1")
    c.feed_element(
        fromstring(
            f'<defNumberVector device="{DEV}" name="EQUATORIAL_EOD_COORD" state="Idle" perm="rw">'
            '<defNumber name="RA" format="%010.6m">1.5</defNumber><defNumber name="DEC">-20:30:00</defNumber>'
            "</defNumberVector>"
        )
    )
    vec = c.vector(DEV, "EQUATORIAL_EOD_COORD")
    assert vec is not None and vec.number("RA") == 1.5 and vec.number("DEC") == pytest.approx(-20.5)
    c.feed_element(
        fromstring(
            f'<setNumberVector device="{DEV}" name="EQUATORIAL_EOD_COORD" state="Busy">'
            '<oneNumber name="RA">2.0</oneNumber></setNumberVector>'
        )
    )
    assert vec.state == "Busy" and vec.number("RA") == 2.0 and vec.busy_generation == vec.generation == 2
    # a malformed update is not applied, and says why
    c.feed_element(
        fromstring(
            f'<setNumberVector device="{DEV}" name="EQUATORIAL_EOD_COORD" state="Ok">'
            '<oneNumber name="RA">banana</oneNumber></setNumberVector>'
        )
    )
    assert vec.state == "Busy" and vec.number("RA") == 2.0
    assert "malformed setNumberVector" in c.protocol_errors[-1] and "banana" in c.protocol_errors[-1]
    c.feed_element(fromstring(f'<setSwitchVector device="{DEV}" name="NOPE" state="Ok"/>'))
    assert "undefined property" in c.protocol_errors[-1]
    c.feed_element(fromstring(f'<setNumberVector device="{DEV}" name="EQUATORIAL_EOD_COORD" state="Weird"/>'))
    assert "bad state" in c.protocol_errors[-1]
    c.feed_element(fromstring(f'<delProperty device="{DEV}" name="EQUATORIAL_EOD_COORD"/>'))
    assert c.vector(DEV, "EQUATORIAL_EOD_COORD") is None


def test_blobs_are_decoded_and_bad_ones_refused() -> None:
    import base64
    import zlib

    c = IndiClient("127.0.0.1")
    c.feed_element(
        fromstring(
            '<defBLOBVector device="CCD Simulator" name="CCD1" state="Idle" perm="ro">'
            '<defBLOB name="CCD1"/></defBLOBVector>'
        )
    )
    raw = b"SIMPLE  =                    T" + b" " * 50
    for fmt, payload in ((".fits", raw), (".fits.z", zlib.compress(raw))):
        c.feed_element(
            fromstring(
                f'<setBLOBVector device="CCD Simulator" name="CCD1" state="Ok"><oneBLOB name="CCD1" '
                f'size="{len(raw)}" format="{fmt}">{base64.b64encode(payload).decode()}</oneBLOB></setBLOBVector>'
            )
        )
        vec = c.vector("CCD Simulator", "CCD1")
        assert vec is not None and vec.blobs["CCD1"].data == raw and vec.blobs["CCD1"].format == ".fits"
    generation = vec.generation
    c.feed_element(
        fromstring(
            '<setBLOBVector device="CCD Simulator" name="CCD1" state="Ok">'
            '<oneBLOB name="CCD1" size="3" format=".fits">@@not base64@@</oneBLOB></setBLOBVector>'
        )
    )
    assert vec.generation == generation and "not base64" in c.protocol_errors[-1]


def test_interfaces_name_the_kind() -> None:
    from pyros_device_gateway.drivers.indi import interface_names, kind_of_interfaces

    assert interface_names(22) == ["ccd", "guider", "filter"]
    assert kind_of_interfaces(interface_names(22)) == "camera"
    assert kind_of_interfaces(interface_names(5)) == "telescope"
    assert kind_of_interfaces(interface_names(16)) == "filterwheel"
    assert kind_of_interfaces([]) is None


def test_site_file_devices_are_checked() -> None:
    from pyros_device_gateway.config import parse_devices

    specs = parse_devices(
        {"devices": [{"id": "telescope", "kind": "telescope", "driver": "indi", "indi": "host:7000"}]}
    )
    assert specs[0].indi_host == "host" and specs[0].indi_port == 7000
    assert specs[0].indi_device == "Telescope Simulator"
    for bad, why in (
        ({"id": "x", "kind": "toaster"}, "kind must be one of"),
        ({"id": "w", "kind": "weather", "driver": "indi"}, "no INDI driver for a weather"),
        ({"id": "t", "kind": "telescope", "driver": "indi", "indi": "host:port"}, "expected host:port"),
        ({"id": "t", "kind": "telescope", "colour": "red"}, "unknown keys"),
        ({"id": "c", "kind": "camera", "focal_length_mm": -1}, "positive number"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_devices({"devices": [bad]}, "site.toml")
    with pytest.raises(ValueError, match="listed twice"):
        parse_devices({"devices": [{"id": "a", "kind": "dome"}, {"id": "a", "kind": "dome"}]})


async def test_unreachable_indiserver_is_a_driver_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    drv = IndiTelescopeDriver(
        "telescope", IndiClient("127.0.0.1", port), indi_device=DEV, clock=SystemClock(), site=SITE
    )
    with pytest.raises(DriverError, match="cannot reach indiserver"):
        await drv.connect()
    assert (await drv.status()).state == "offline"


# --- against a real indiserver -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def indiserver() -> Iterator[int]:
    exe = shutil.which("indiserver")
    if exe is None or shutil.which("indi_simulator_telescope") is None:
        msg = "indiserver / indi_simulator_telescope not installed (apt-get install -y indi-bin)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: integration tests never skip)")
        pytest.skip(msg)
    port = _free_port()
    proc = subprocess.Popen(
        # its own local socket (-u): two indiservers with the default one cannot both start
        [exe, "-u", f"/tmp/pyros-indi-{port}", "-p", str(port), "indi_simulator_telescope"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"indiserver exited with {proc.returncode}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def mount(indiserver: int) -> AsyncIterator[IndiTelescopeDriver]:
    drv = IndiTelescopeDriver(
        "telescope",
        IndiClient("127.0.0.1", indiserver),
        indi_device=DEV,
        clock=SystemClock(),
        site=SITE,
        timeout_s=60.0,
    )
    await drv.connect()
    try:
        yield drv
    finally:
        await drv.close()


@pytest.mark.integration
async def test_indi_telescope_connects_slews_and_refuses_the_horizon(mount: IndiTelescopeDriver) -> None:
    before = await mount.status()
    assert before.state in ("idle", "parked") and before.ok, before
    clock = SystemClock()
    ra, dec = altaz_to_radec(70.0, 180.0, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=clock.now())
    seen: list[Reading] = []

    async def progress(r: Reading) -> None:
        seen.append(r)

    cmd = DriverCommand(name="slew", params=SlewParams(ra_deg=ra, dec_deg=dec), command_id=uuid.uuid4())
    after = await asyncio.wait_for(mount.execute(cmd, progress), 90)
    assert "slewing" in [r.state for r in seen]  # (unparking first when the mount starts parked)
    assert after.ok and after.state == "idle", after
    assert after.ra_deg is not None and after.dec_deg is not None
    assert separation_deg(after.ra_deg, after.dec_deg, ra, dec) < 0.1

    low_ra, low_dec = altaz_to_radec(5.0, 0.0, lat_deg=SITE.lat_deg, lon_deg=SITE.lon_deg, when=clock.now())
    low = DriverCommand(
        name="slew", params=SlewParams(ra_deg=low_ra, dec_deg=low_dec), command_id=uuid.uuid4()
    )
    with pytest.raises(DriverError, match="below the horizon limit"):
        await mount.execute(low)
    with pytest.raises(DriverError, match="does not support"):
        await mount.execute(DriverCommand(name="set_focus", params=NoParams(), command_id=uuid.uuid4()))
    still = await mount.status()
    assert still.ra_deg is not None and still.dec_deg is not None
    assert separation_deg(still.ra_deg, still.dec_deg, ra, dec) < 0.5  # it did not move
