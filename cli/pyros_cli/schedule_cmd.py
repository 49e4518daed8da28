"""``pyros schedule``: plan one night from a workload file (docs/scheduler.md)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

PROGRESS_FROM = 500  # sequences: above this, say what is happening


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"pyros schedule: {msg}", err=True)
    return typer.Exit(2)


def load_workload(path: Path) -> tuple[list[Any], dict[str, Any]]:
    """Requests and programs from ``{"programs": [...], "requests": [...]}``."""
    from pydantic import ValidationError
    from pyros_common.domain.programs.quotas import Grade
    from pyros_common.domain.requests.document import import_document
    from pyros_scheduler.planner import Program

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("requests"), list):
        raise _fail(f'{path}: expected {{"programs": [...], "requests": [...]}}')
    programs: dict[str, Program] = {}
    for k, p in enumerate(data.get("programs", [])):
        try:
            programs[p["code"]] = Program(p["code"], Grade(p.get("grade", "C")), p.get("quota_percent"))
        except (KeyError, ValueError, TypeError) as exc:
            raise _fail(f"{path}: programs.{k}: {exc!r}") from None
    requests = []
    seen: set[str] = set()
    for k, doc in enumerate(data["requests"]):
        try:
            name = str(doc.get("name", f"request-{k}"))
            rid = name if name not in seen else f"{name}#{k}"
            seen.add(rid)
            requests.append(import_document(doc, user="workload", id=rid))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise _fail(f"{path}: requests.{k}.{where}: {first['msg']}") from None
    return requests, programs


def schedule(
    requests: Annotated[
        Path, typer.Option("--requests", help="Workload JSON: programs and request documents.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write schedule.json.")],
    night: Annotated[str, typer.Option("--night", help="Local date of the night's evening, YYYY-MM-DD.")],
    site: Annotated[
        str, typer.Option("--site", help="Built-in site id (gft-spm, ohp) or a site file (TOML).")
    ] = "gft-spm",
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw a Gantt chart (PNG).")] = None,
    telescopes: Annotated[
        int, typer.Option("--telescopes", min=1, help="Plan for the site's first N telescopes (a node).")
    ] = 1,
    improve: Annotated[
        bool,
        typer.Option(
            "--improve/--no-improve",
            help="Also improve the plan as the scheduler service does after publishing one (CP-SAT: "
            "the relaxation repaired, then the window search; up to about 20 s).",
        ),
    ] = False,
) -> None:
    """Plan one night: which sequence runs when, on which telescope, and why the others don't."""
    from pyros_common.domain.sky.sites import get_site
    from pyros_scheduler.book import LNS_WALL_S, polish
    from pyros_scheduler.planner import build_input, solve, to_plan

    try:
        the_site = get_site(site)
        node = the_site.node(telescopes)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    except ValueError as exc:
        raise _fail(f"--telescopes {telescopes}: {exc}") from None
    try:
        the_night = dt.date.fromisoformat(night)
    except ValueError:
        raise _fail(f"--night {night!r} is not a date (YYYY-MM-DD)") from None
    reqs, programs = load_workload(requests)
    n_seq = sum(len(r.sequences) for r in reqs)
    loud = n_seq >= PROGRESS_FROM
    t0 = time.perf_counter()
    if loud:
        typer.echo(f"computing visibility of {n_seq} sequences on the night of {the_night}...", err=True)
    ni = build_input(reqs, site=the_site, night=the_night, programs=programs, node=node)
    if loud:
        typer.echo(f"windows ready ({time.perf_counter() - t0:.2f} s); scheduling...", err=True)
    names = tuple(t.id for t in node)
    plan = solve(ni, night=the_night, site=the_site, telescopes=names, clock_s=time.perf_counter)
    first = plan.objective
    if improve and ni.kernel.sequences and not plan.result.stats.get("exact_optimal"):
        typer.echo(f"improving the plan with CP-SAT (at most about {LNS_WALL_S:.0f} s)...", err=True)
        better = polish(ni.kernel, plan.result, exact=False)
        if better.objective > plan.result.objective * (1 + 1e-9) + 1e-6:
            plan = to_plan(
                ni,
                better,
                night=the_night,
                site=the_site,
                telescopes=names,
                solver=f"{plan.solver}, then CP-SAT improvement (book.polish)",
            )
    plan.runtime_s = time.perf_counter() - t0
    doc = plan.to_json()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    tmp.rename(out)
    m = len(ni.kernel.sequences)
    typer.echo(
        f"night {the_night} at {the_site.name}: {doc['night']['start']} -> {doc['night']['end']}\n"
        f"placed {len(plan.scheduled)} of {m} sequences on {telescopes} telescope(s) ({', '.join(names)}), "
        f"objective {plan.objective:,.0f}, runtime {plan.runtime_s:.3f} s -> {out}"
    )
    if plan.objective > first:
        typer.echo(
            f"(the heuristic's plan had {first:,.0f}: CP-SAT raised it by {plan.objective / first - 1:.1%})"
        )
    if n_seq > m:
        typer.echo(f"({n_seq - m} sequences are not for this night: their dates and carry-over exclude it)")
    reasons: dict[str, int] = {}
    for u in plan.unscheduled:
        key = u.reason if not u.reason.startswith("displaced") else "displaced by higher-weight sequence"
        reasons[key] = reasons.get(key, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda x: -x[1]):
        typer.echo(f"  {count:4d} unscheduled: {reason}")
    if plot is not None:
        from pyros_scheduler.plot import gantt

        if loud:
            typer.echo("drawing...", err=True)
        gantt(plan, the_site, plot)
        typer.echo(f"plot -> {plot}")
