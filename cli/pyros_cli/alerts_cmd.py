"""``pyros alerts ...``: operator commands of the alerts service."""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

alerts_app = typer.Typer(
    no_args_is_help=True,
    help="Alerts: send VOEvent packets to a running PyROS, or replay them through the alerts code.",
)


def manifest_order(files: list[Path]) -> list[Path]:
    """``files`` sorted as listed by the MANIFEST.tsv found above them (unlisted ones last, as given)."""
    rank: dict[Path, int] = {}
    for f in files:
        for parent in f.resolve().parents:
            manifest = parent / "MANIFEST.tsv"
            if manifest.is_file():
                with manifest.open(encoding="utf-8", newline="") as fh:
                    for i, row in enumerate(csv.DictReader(fh, delimiter="\t")):
                        rank.setdefault((parent / row["path"]).resolve(), i)
                break
    big = len(rank) + len(files)
    return sorted(files, key=lambda f: rank.get(f.resolve(), big))


async def replay_packets(
    files: list[Path], *, database_url: str | None = None, echo: Any = None
) -> list[dict[str, Any]]:
    """Feed ``files`` in order through the real alerts service; one result dict per packet."""
    from prometheus_client import CollectorRegistry
    from pyros_alerts.app import AlertsService
    from pyros_alerts.handlers import Outcome
    from pyros_common.bus.inprocess import InProcessBus
    from pyros_common.clock import SystemClock
    from pyros_common.contracts import Event, VoeventReceived
    from pyros_common.db import Database
    from pyros_common.runtime.service import ServiceContext
    from pyros_common.settings import Settings

    with tempfile.TemporaryDirectory(prefix="pyros-replay-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'alerts.db'}"
        db = Database(url)
        try:
            db.upgrade()
            clock = SystemClock()
            bus = InProcessBus(clock=clock, retries=1)
            settings = Settings(database_url=url, vtp_host=None, gcn_bootstrap=None, gcn_client_id=None)
            ctx = ServiceContext(bus=bus, clock=clock, settings=settings, db=db, registry=CollectorRegistry())
            svc = AlertsService(ctx)
            outcomes: dict[str, Outcome] = {}

            async def handle(event: Event) -> None:
                assert isinstance(event, VoeventReceived)
                outcomes[str(event.event_id)] = await svc.handler.process(event)

            bus.subscribe(VoeventReceived.topic, svc.group, handle)
            await bus.start()
            await svc.on_start()
            results: list[dict[str, Any]] = []
            for f in files:
                raw = f.read_bytes()
                sent = await svc.receive(raw, "replay")
                await bus.drain()
                if sent is None:
                    out: dict[str, Any] = Outcome(
                        ivorn="",
                        accepted=False,
                        reason="packet larger than 1 MB (dead-lettered at intake)",
                        action="rejected",
                    ).to_json()
                else:
                    got = outcomes.get(str(sent.event_id))
                    if got is None:
                        out = Outcome(sent.ivorn, False, "handler failed (see the log)", "rejected").to_json()
                    else:
                        out = got.to_json()
                results.append(out)
                if echo is not None:
                    echo(out)
            await svc.on_stop()
            await bus.stop()
            return results
        finally:
            db.dispose()


@alerts_app.command("replay")
def replay(
    files: Annotated[list[Path], typer.Argument(help="VOEvent XML files, processed in the given order.")],
    database_url: Annotated[
        str | None, typer.Option(help="Database to use (default: a temporary SQLite, deleted afterwards).")
    ] = None,
    in_manifest_order: Annotated[
        bool, typer.Option("--manifest-order", help="Sort the files by the MANIFEST.tsv found above them.")
    ] = False,
) -> None:
    """Process packets through the real alerts code; print one JSON line per packet."""
    from pyros_common.logs import configure_logging

    configure_logging("WARNING", "console")  # logs on stderr; stdout is the JSON lines
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        typer.echo(f"pyros: no such file: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    ordered = manifest_order(files) if in_manifest_order else list(files)

    def echo(line: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    import asyncio

    results = asyncio.run(replay_packets(ordered, database_url=database_url, echo=echo))
    actions = Counter(r["action"] for r in results)
    alerts = len({r["alert_id"] for r in results if r["alert_id"]})
    summary = ", ".join(f"{k} {v}" for k, v in sorted(actions.items()))
    typer.echo(
        f"replayed {len(results)} packets: {sum(r['accepted'] for r in results)} accepted, "
        f"{alerts} alerts ({summary})",
        err=True,
    )


@alerts_app.command("send")
def send(
    files: Annotated[list[Path], typer.Argument(help="VOEvent XML files, sent in the given order.")],
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Re-time the packets so that the burst happens now, with fresh trigger ids (a drill "
            "with a real, old packet; the packets of one event keep their spacing).",
        ),
    ] = False,
    url: Annotated[str | None, typer.Option(help="PyROS URL (default: the one of `pyros login`).")] = None,
) -> None:
    """Post packets to the HTTP intake of a running PyROS (as the logged-in admin or expert)."""
    import datetime as dt
    import uuid

    from pyros_cli.client import PyrosClient
    from pyros_cli.routines_cmd import _api, _fail

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise _fail(f"no such file: {', '.join(missing)}", 2)
    packets = [(f.name, f.read_bytes()) for f in files]
    if now:
        from pyros_alerts.domain.retime import retime_packets

        try:
            retimed = retime_packets(packets, when=dt.datetime.now(dt.UTC), tag=uuid.uuid4().hex)
        except Exception as exc:
            raise _fail(f"cannot re-time {files[0]}: {exc}", 2) from None
        packets = [(r.path, r.xml) for r in retimed]
    for name, raw in packets:

        def post(client: PyrosClient, packet: bytes = raw) -> dict[str, Any]:
            return client.send_voevent(packet)

        answer = _api(post, url)
        typer.echo(f"{name}: {answer.get('reason', '')} ({answer.get('ivorn', '')})")
