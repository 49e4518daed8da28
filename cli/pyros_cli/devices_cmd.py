"""``pyros devices``: look at the devices behind an indiserver, and exercise them once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

devices_app = typer.Typer(no_args_is_help=True, help="Devices: probe an indiserver.")


@devices_app.command("probe")
def probe(
    indi: Annotated[str, typer.Option("--indi", help="indiserver as HOST:PORT.")],
    exercise: Annotated[
        bool,
        typer.Option(help="Unpark, slew, change filter, take a 1 s exposure and write its FITS file."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Folder of the exercise's FITS file (default: DATA_DIR/images/probe).")
    ] = None,
    wait_s: Annotated[float, typer.Option(help="Seconds to wait for the devices to be listed.")] = 3.0,
) -> None:
    """List the INDI devices (name, interfaces, kind, connected) as JSON; --exercise runs them."""
    import asyncio
    import json

    try:
        report = asyncio.run(_probe(indi, exercise=exercise, out=out, wait_s=wait_s))
    except (ValueError, RuntimeError) as exc:
        typer.echo(f"pyros devices probe: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report, indent=2))
    if exercise and report.get("image"):
        typer.echo(report["image"])


async def _probe(indi: str, *, exercise: bool, out: Path | None, wait_s: float) -> dict[str, Any]:
    import asyncio

    from pyros_device_gateway.config import parse_endpoint
    from pyros_device_gateway.drivers.indi import IndiClient, IndiError, kind_of_interfaces

    host, port = parse_endpoint(indi)
    client = IndiClient(host, port)
    try:
        await client.connect()
    except IndiError as exc:
        raise RuntimeError(str(exc)) from None
    try:
        # Devices arrive one by one: wait until every device seen has said what it is, and a moment more.
        loop = asyncio.get_running_loop()
        end, quiet = loop.time() + wait_s, None
        while loop.time() < end:
            names = client.devices()
            if names and all(client.vector(n, "DRIVER_INFO") is not None for n in names):
                quiet = quiet or loop.time()
                if loop.time() - quiet > 0.5:
                    break
            else:
                quiet = None
            await asyncio.sleep(0.05)
        devices = []
        for name in client.devices():
            interfaces = client.interfaces(name)
            conn = client.vector(name, "CONNECTION")
            devices.append(
                {
                    "name": name,
                    "interfaces": interfaces,
                    "kind": kind_of_interfaces(interfaces),
                    "connected": bool(conn is not None and conn.values.get("CONNECT") is True),
                }
            )
        report: dict[str, Any] = {"indi": f"{host}:{port}", "devices": devices}
        if exercise:
            report.update(await _exercise(client, devices, out))
        return report
    finally:
        await client.close()


async def _exercise(client: Any, devices: list[dict[str, Any]], out: Path | None) -> dict[str, Any]:
    import uuid
    from datetime import UTC

    from pyros_common.clock import SystemClock
    from pyros_common.domain.sky.sites import get_site
    from pyros_common.settings import Settings
    from pyros_device_gateway.domain import parse_params
    from pyros_device_gateway.drivers import DriverCommand, DriverError
    from pyros_device_gateway.drivers.indi import (
        IndiCameraDriver,
        IndiFilterWheelDriver,
        IndiTelescopeDriver,
    )
    from pyros_simulators.astro import altaz_to_radec

    settings = Settings()
    site = get_site(settings.site)
    clock = SystemClock()
    by_kind: dict[str, str] = {}
    for d in devices:
        if d["kind"] and d["kind"] not in by_kind:
            by_kind[d["kind"]] = d["name"]
    missing = [k for k in ("telescope", "camera") if k not in by_kind]
    if missing:
        raise RuntimeError(f"--exercise needs a {' and a '.join(missing)} on the indiserver")
    mount = IndiTelescopeDriver(
        "telescope", client, indi_device=by_kind["telescope"], clock=clock, site=site, horizon_limit_deg=0.0
    )
    wheel = (
        IndiFilterWheelDriver("filterwheel", client, indi_device=by_kind["filterwheel"], clock=clock)
        if "filterwheel" in by_kind
        else None
    )
    camera = IndiCameraDriver(
        "camera",
        client,
        indi_device=by_kind["camera"],
        clock=clock,
        site=site,
        telescope_name=settings.telescope_id,
        telescope=mount,
        filterwheel=wheel,
    )
    steps: list[str] = []

    def cmd(name: str, image: Path | None = None, **params: Any) -> DriverCommand:
        return DriverCommand(name, parse_params(name, params), uuid.uuid4(), image_path=image)

    try:
        for drv in (mount, wheel, camera):
            if drv is not None:
                await drv.connect()
        await mount.execute(cmd("unpark"))
        steps.append("unpark")
        ra, dec = altaz_to_radec(60.0, 180.0, lat_deg=site.lat_deg, lon_deg=site.lon_deg, when=clock.now())
        await mount.execute(cmd("slew", ra_deg=round(ra, 6), dec_deg=round(dec, 6)))
        steps.append(f"slew ra={ra:.4f} dec={dec:.4f}")
        if wheel is not None:
            filters = wheel.filters()
            target = filters[1] if len(filters) > 1 else filters[0]
            await wheel.execute(cmd("set_filter", filter=target))
            steps.append(f"set_filter {target}")
        now = clock.now().astimezone(UTC)
        folder = out or settings.data_dir / "images" / "probe"
        path = (folder / f"probe_{now:%Y%m%dT%H%M%S}.fits").resolve()
        reading = await camera.execute(cmd("expose", image=path, exposure_s=1.0, object="probe"))
        steps.append("expose 1 s")
    except DriverError as exc:
        raise RuntimeError(f"exercise failed after {steps}: {exc}") from None
    return {"exercise": steps, "image": str(reading.image)}
