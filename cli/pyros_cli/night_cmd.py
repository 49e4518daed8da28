"""``pyros night``: a whole night simulated faster than real time, with its report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer


def night(
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Run on the simulators and a virtual clock (required for now).")
    ] = False,
    site: Annotated[str, typer.Option(help="Built-in site id or a site file.")] = "gft-spm",
    date: Annotated[str, typer.Option(help="The night, by the local date of its evening (YYYY-MM-DD).")] = "",
    workload: Annotated[
        Path | None, typer.Option(help="Programs and routine requests (JSON), e.g. examples/night.json.")
    ] = None,
    alert: Annotated[
        list[str] | None,
        typer.Option(help="PACKET.xml@HH:MM: a VOEvent re-timed to burst at that UTC time (repeatable)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="DEVICE:disconnect|hang|refuse|clear@HH:MM: a simulator fault (repeatable)."),
    ] = None,
    speed: Annotated[str, typer.Option(help="'max' (virtual time: as fast as the machine allows).")] = "max",
    report: Annotated[Path, typer.Option(help="Folder of report.json and report.html.")] = Path("out"),
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (default: REPORT/data).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Simulate a night with every service: plan, observe, alerts, images; write the report."""
    import asyncio

    from pyros_common.logs import configure_logging

    from pyros_cli.night import AlertSpec, FaultSpec, prepare_dirs
    from pyros_cli.night import simulate as run

    if not simulate:
        typer.echo(
            "pyros: only --simulate is available: a real night is `pyros up` on the real clock", err=True
        )
        raise typer.Exit(2)
    if speed != "max":
        typer.echo(
            "pyros: --speed max is the only speed of pyros night (use `pyros up --simulate` to watch)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        the_date = dt.date.fromisoformat(date) if date else dt.datetime.now(dt.UTC).date()
        specs = [AlertSpec.parse(a) for a in alert or []]
        faults = [FaultSpec.parse(f) for f in fault or []]
    except ValueError as exc:
        typer.echo(f"pyros: {exc}", err=True)
        raise typer.Exit(2) from None
    for p in [s.path for s in specs] + ([workload] if workload else []):
        if not p.is_file():
            typer.echo(f"pyros: no such file: {p}", err=True)
            raise typer.Exit(2)
    import json

    try:
        load = json.loads(workload.read_text()) if workload else None
    except ValueError as exc:
        typer.echo(f"pyros: {workload}: not JSON ({exc})", err=True)
        raise typer.Exit(2) from None
    configure_logging("WARNING", "console")
    out, data = prepare_dirs(report, data_dir)
    try:
        asyncio.run(
            run(
                site_name=site,
                date=the_date,
                workload=load,
                alerts=specs,
                faults=faults,
                report_dir=out,
                data_dir=data,
                progress=not quiet,
                echo=typer.echo,
            )
        )
    except ValueError as exc:
        typer.echo(f"pyros: {exc}", err=True)
        raise typer.Exit(2) from None
