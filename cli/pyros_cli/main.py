"""``pyros``: the one command line of PyROS."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pyros_cli.alerts_cmd import alerts_app
from pyros_cli.devices_cmd import devices_app
from pyros_cli.local import DATA_DIR_ENV, DEFAULT_DATA_DIR, embedded_database_url
from pyros_cli.night_cmd import night
from pyros_cli.routines_cmd import login, plan, programs_app, request_app, users_app
from pyros_cli.schedule_cmd import schedule

if TYPE_CHECKING:
    from pyros_common.settings import Settings

# Only typer and the standard library at import (here and in every *_cmd module): `pyros --help`
# must not load astropy, numpy, SQLAlchemy, FastAPI or the contracts. Commands import lazily.

app = typer.Typer(no_args_is_help=True, add_completion=False, help="PyROS robotic observatory control.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
contracts_app = typer.Typer(no_args_is_help=True, help="Event contracts for partner nodes.")
app.add_typer(db_app, name="db")
app.add_typer(contracts_app, name="contracts")
app.add_typer(alerts_app, name="alerts")
app.add_typer(devices_app, name="devices")
app.add_typer(users_app, name="users")
app.add_typer(programs_app, name="programs")
app.add_typer(request_app, name="request")
app.command("login")(login)
app.command("schedule")(schedule)
app.command("plan")(plan)
app.command("night")(night)


def load_settings(**overrides: object) -> Settings:
    from pydantic import ValidationError
    from pyros_common.settings import Settings

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        msgs = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        typer.echo(f"pyros: invalid settings: {msgs}", err=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    service: Annotated[
        str,
        typer.Argument(
            help="alerts, routines, scheduler, majordome, monitoring, "
            "observer, analyzer, device-gateway or gateway"
        ),
    ],
) -> None:
    """Run one service on Kafka and PostgreSQL (production mode)."""
    from pyros_common.logs import configure_logging

    from pyros_cli.registry import SERVICE_CLASSES
    from pyros_cli.serve import run_service

    if service not in (*SERVICE_CLASSES, "gateway"):
        typer.echo(
            f"pyros: unknown service {service!r}; choose one of {', '.join(SERVICE_CLASSES)}, gateway",
            err=True,
        )
        raise typer.Exit(2)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    run_service(service, settings)


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8000,
    host: Annotated[str, typer.Option(help="Gateway address.")] = "127.0.0.1",
    data_dir: Annotated[
        Path, typer.Option(envvar=DATA_DIR_ENV, help="Data directory (SQLite, images).")
    ] = DEFAULT_DATA_DIR,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Start the clock just before the coming dusk and run it --speed times faster; on a new "
            "database, submit the demo workload for tonight, so the telescope works at once.",
        ),
    ] = False,
    speed: Annotated[float, typer.Option(help="With --simulate: times faster than real time.")] = 30.0,
    demo: Annotated[Path, typer.Option(help="With --simulate: the demo workload.")] = Path(
        "examples/night.json"
    ),
) -> None:
    """Every service in one process: in-process bus, SQLite, simulators, the gateway on PORT.

    On an empty database it creates the user `admin` and prints its one-time password once.
    Without --simulate the clock is the real one.
    """
    from pyros_common.logs import configure_logging

    from pyros_cli.serve import run_embedded

    data_dir = data_dir.resolve()
    settings = load_settings(
        database_url=embedded_database_url(data_dir),
        data_dir=data_dir,
        log_format=os.environ.get("PYROS_LOG_FORMAT", "console"),
    )
    configure_logging(settings.log_level, settings.log_format)
    if simulate and speed <= 0:
        typer.echo("pyros: --speed must be > 0", err=True)
        raise typer.Exit(2)
    run_embedded(
        settings,
        host,
        port,
        data_dir,
        simulate_speed=speed if simulate else None,
        demo_workload=demo if simulate and demo.is_file() else None,
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations to PYROS_DATABASE_URL."""
    from pyros_common.db import Database

    settings = load_settings()
    db = Database(settings.database_url)
    try:
        db.upgrade(revision)
    except Exception as exc:
        typer.echo(
            f"pyros: migration failed on {db.engine.url.render_as_string(hide_password=True)}: {exc}",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(
        f"database at {db.engine.url.render_as_string(hide_password=True)} is at {db.current_revision()}"
    )


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration and the code's."""
    from pyros_common.db import Database

    db = Database(load_settings().database_url)
    typer.echo(f"current: {db.current_revision()}  head: {db.head_revision()}")


@contracts_app.command("asyncapi")
def contracts_asyncapi() -> None:
    """Print the AsyncAPI 3 document of every topic (YAML)."""
    from pyros_common.contracts.asyncapi import asyncapi_yaml

    sys.stdout.write(asyncapi_yaml())


@contracts_app.command("jsonschema")
def contracts_jsonschema(
    out: Annotated[Path, typer.Option(help="Directory for one file per event.")],
) -> None:
    """Write the JSON Schema of every event model."""
    import json

    from pyros_common.contracts.asyncapi import json_schemas

    out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        tmp = out / f"{name}.json.tmp"
        tmp.write_text(json.dumps(schema, indent=2) + "\n")
        tmp.rename(out / f"{name}.json")
    typer.echo(f"wrote {len(json_schemas())} schemas to {out}")


def main() -> None:
    app()


if __name__ == "__main__":  # python -m pyros_cli.main
    main()
