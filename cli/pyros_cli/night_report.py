"""The night report: what was planned, what ran, the alerts, the pauses, the images.

Built only from the events of the night (the bus's log) and the files on disk, so it says
what the services said, not what the runner believes. ``report.json`` for machines,
``report.html`` (Gantt planned against executed, alert markers, pauses, weather, thumbnails)
for people.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

UTC = dt.UTC


def _events(log: dict[str, list[bytes]], topic: str) -> list[Any]:
    from pyros_common.bus.port import PoisonMessage, decode

    out = []
    for raw in log.get(topic, []):
        try:
            out.append(decode(topic, raw))
        except PoisonMessage:
            continue
    return out


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _voevent_row(analyses: list[Any], request_id: str | None, received: dt.datetime) -> dict[str, Any]:
    """The analyzer's first VOEvent for the alert's request: when (night time) and where."""
    first = next((e for e in analyses if request_id and e.request_id == request_id and e.voevent_ivorn), None)
    if first is None:
        return {"voevent_ivorn": None, "voevent_path": None, "voevent_at": None, "alert_to_voevent_s": None}
    return {
        "voevent_ivorn": first.voevent_ivorn,
        "voevent_path": first.voevent_path,
        "voevent_at": _iso(first.sent_at),
        "alert_to_voevent_s": round((first.sent_at - received).total_seconds(), 3),
        "candidate": {
            "ra_deg": first.ra_deg,
            "dec_deg": first.dec_deg,
            "error_arcsec": first.error_arcsec,
            "magnitude": first.magnitude,
            "filter": first.filter,
            "confidence": first.confidence,
        },
    }


def build_report(
    *,
    bus_log: dict[str, list[bytes]],
    run: Any,
    site: Any,
    night: dt.date,
    dusk: dt.datetime,
    dawn: dt.datetime,
    data_dir: Path,
    telescope: str,
) -> dict[str, Any]:
    """The report document (see the module docstring)."""
    from pyros_common.contracts import (
        AlertChanged,
        DeviceCommand,
        DeviceStatus,
        ImageWritten,
        ObservationChanged,
        ScheduleChanged,
        SystemChanged,
    )

    schedules = [
        e for e in _events(bus_log, ScheduleChanged.topic) if e.telescope_id == telescope and e.night == night
    ]
    systems = [e for e in _events(bus_log, SystemChanged.topic) if e.telescope_id == telescope]
    observations = _events(bus_log, ObservationChanged.topic)
    images = [e for e in _events(bus_log, ImageWritten.topic)]
    commands = _events(bus_log, DeviceCommand.topic)
    alerts = _events(bus_log, AlertChanged.topic)
    analyses = _events(bus_log, "pyros.analysis")
    statuses = _events(bus_log, DeviceStatus.topic)

    dispatched = [
        (e.sent_at, e.dispatch) for e in systems if e.dispatch is not None and e.dispatch.kind == "sequence"
    ]
    last_plan = schedules[-1] if schedules else None
    planned_first = {s.sequence_id: s for v in schedules for s in v.scheduled}
    scheduled_ids = {d.sequence_id for _, d in dispatched}
    if last_plan is not None:
        scheduled_ids |= {s.sequence_id for s in last_plan.scheduled}

    outcome: dict[str, ObservationChanged] = {}
    started: dict[str, dt.datetime] = {}
    for o in observations:
        if o.kind != "sequence":
            continue
        if o.action == "started":
            started.setdefault(o.sequence_id, o.sent_at)
        if o.action in ("completed", "interrupted", "failed"):
            outcome[o.sequence_id] = o
    per_seq: list[dict[str, Any]] = []
    counts = {"completed": 0, "interrupted": 0, "failed": 0}
    for sid in sorted(scheduled_ids):
        o = outcome.get(sid)
        plan = planned_first.get(sid)
        if o is None:
            state, reason = (
                "failed",
                "never ran: the night ended before its slot" if sid not in started else "no end reported",
            )
        else:
            state, reason = o.action, o.reason or o.action
        counts[state] += 1
        per_seq.append(
            {
                "sequence_id": sid,
                "request_id": plan.request_id if plan is not None else (o.request_id if o else ""),
                "outcome": state,
                "reason": reason,
                "planned_start": _iso(plan.start) if plan else None,
                "planned_end": _iso(plan.end) if plan else None,
                "started_at": _iso(started.get(sid)),
                "ended_at": _iso(o.sent_at) if o is not None else None,
                "images": sum(1 for i in images if i.sequence_id == sid and i.image_type == "light"),
                "images_planned": o.images_planned if o is not None else 0,
                "images_reported": o.images_done if o is not None else 0,
            }
        )

    # Alerts: from received to the slew command that started their sequence, and the first image.
    alert_rows = []
    by_alert = {a.alert_id: a for a in alerts}
    for rec in run.alerts:
        a = next((x for x in alerts if rec["ivorn"] in x.packet_ivorns), None)
        received = dt.datetime.fromisoformat(rec["received_at"])
        rid = a.request_id if a is not None else None
        first_dispatch = next((t for t, d in dispatched if rid and d.request_id == rid), None)
        slew = None
        if first_dispatch is not None:
            slew = next(
                (
                    c.sent_at
                    for c in commands
                    if c.command == "slew" and c.sent_at >= first_dispatch and c.producer == "observer"
                ),
                None,
            )
        first_img = min((i.sent_at for i in images if rid and i.request_id == rid), default=None)
        alert_rows.append(
            {
                "alert_id": a.alert_id if a else None,
                "mission": rec["mission"],
                "ivorn": rec["ivorn"],
                "request_id": rid,
                "received_at": _iso(received),
                "slew_command_at": _iso(slew),
                "alert_to_slew_s": None if slew is None else round((slew - received).total_seconds(), 3),
                "first_image_at": _iso(first_img),
                "alert_to_first_image_s": None
                if first_img is None
                else round((first_img - received).total_seconds(), 3),
                "position": {
                    "ra_deg": rec["ra_deg"],
                    "dec_deg": rec["dec_deg"],
                    "error_deg": rec["error_deg"],
                },
                "injected": rec.get("injected"),
                **_voevent_row(analyses, rid, received),
            }
        )
    _ = by_alert

    pauses = []
    for k, e in enumerate(systems):
        if e.state != "paused" or (k and systems[k - 1].state == "paused"):
            continue
        end = next((x.sent_at for x in systems[k + 1 :] if x.state in ("running", "dawn")), None)
        pauses.append({"start": _iso(e.sent_at), "end": _iso(end), "reason": e.reason})

    weather = [
        {
            "at": _iso(s.sent_at),
            "device": s.device_id,
            **{k: v for k, v in s.values.items() if isinstance(v, int | float)},
        }
        for s in statuses
        if s.kind in ("weather", "plc") and s.command_id is None
    ]
    light = [i for i in images if i.image_type == "light"]
    calib = [i for i in images if i.image_type != "light"]
    return {
        "schema": "pyros.night-report/1",
        "site": site.name,
        "telescope": telescope,
        "night": night.isoformat(),
        "dusk": _iso(dusk),
        "dawn": _iso(dawn),
        "wall_time_s": round(run.wall_s, 2),
        "sequences": {"scheduled": len(scheduled_ids), **counts, "list": per_seq},
        "images": len(light),
        "calibration_images": len(calib),
        "images_by_detector": dict(sorted(_count(i.detector for i in light).items())),
        "alerts": alert_rows,
        "pauses": pauses,
        "schedule_versions": len(schedules),
        "states": [
            {"at": _iso(e.sent_at), "state": e.state, "reason": e.reason}
            for e in systems
            if e.dispatch is None
        ],
        "submitted": run.submitted,
        "faults": run.faults,
        "weather": weather[-500:],
        "image_files": [_where(data_dir, i.path) for i in images],
        "data_dir": str(data_dir),
    }


def _where(data_dir: Path, rel: str) -> str:
    """Where an image is now: its event names it under ``_active`` folders renamed since."""
    from pathlib import PurePosixPath

    from pyros_observer.domain.layout import candidates

    for c in candidates(PurePosixPath(rel)):
        if (data_dir / c).exists():
            return str(c)
    return rel


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for x in items:
        out[str(x)] += 1
    return dict(out)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: dict[str, Any], out: Path, data_dir: Path) -> None:
    """``report.json`` and ``report.html`` in ``out`` (each written .tmp, then renamed)."""
    _atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    _atomic(out / "report.html", _html(report, data_dir))


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _num(t: dt.datetime) -> float:
    """Matplotlib's date number of ``t`` (days since its 1970 epoch; date2num is untyped)."""
    return t.timestamp() / 86400.0


def _gantt(report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    seqs = report["sequences"]["list"]
    fig, ax = plt.subplots(figsize=(12, 0.35 * max(4, len(seqs)) + 1.5))
    colour = {"completed": "#2e7d32", "interrupted": "#ef6c00", "failed": "#c62828"}
    for y, s in enumerate(seqs):
        if s["planned_start"]:
            a, b = (dt.datetime.fromisoformat(s[k]) for k in ("planned_start", "planned_end"))
            ax.barh(
                y + 0.2,
                _num(b) - _num(a),
                left=_num(a),
                height=0.35,
                color="#90a4ae",
            )
        if s["started_at"] and s["ended_at"]:
            a, b = (dt.datetime.fromisoformat(s[k]) for k in ("started_at", "ended_at"))
            ax.barh(
                y - 0.2,
                _num(b) - _num(a),
                left=_num(a),
                height=0.35,
                color=colour[s["outcome"]],
            )
    for a in report["alerts"]:
        t = dt.datetime.fromisoformat(a["received_at"])
        ax.axvline(_num(t), color="#d81b60", lw=2)
        ax.text(
            _num(t),
            len(seqs) - 0.5,
            f" {a['alert_id'] or a['mission']}",
            color="#d81b60",
            va="top",
        )
    for p in report["pauses"]:
        a = dt.datetime.fromisoformat(p["start"])
        b = dt.datetime.fromisoformat(p["end"]) if p["end"] else dt.datetime.fromisoformat(report["dawn"])
        ax.axvspan(_num(a), _num(b), color="#ffcdd2", alpha=0.6)
    ax.set_yticks(range(len(seqs)), [s["sequence_id"][-28:] for s in seqs], fontsize=7)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_xlim(
        _num(dt.datetime.fromisoformat(report["dusk"])),
        _num(dt.datetime.fromisoformat(report["dawn"])),
    )
    ax.set_xlabel(
        "UTC  (grey: planned, first version; colour: executed — green completed, orange interrupted, red failed; pink: alerts; shaded: pauses)"
    )
    ax.invert_yaxis()
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out


def _thumbs(report: dict[str, Any], data_dir: Path, n: int = 12) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from astropy.io import fits

    out = []
    files = [f for f in report["image_files"] if "calibration" not in f]
    step = max(1, len(files) // n)
    for rel in files[::step][:n]:
        path = data_dir / rel
        try:
            with fits.open(path, memmap=False) as hdul:
                data = np.asarray(hdul[0].data, dtype=np.float32)
        except (OSError, TypeError, ValueError):
            continue
        k = max(1, data.shape[0] // 256)
        small = data[::k, ::k]
        lo, hi = np.percentile(small, [5, 99.5])
        fig, ax = plt.subplots(figsize=(2.4, 2.4))
        ax.imshow(np.clip((small - lo) / max(hi - lo, 1e-6), 0, 1), cmap="gray", origin="lower")
        ax.set_axis_off()
        out.append((rel, _png(fig)))
        plt.close(fig)
    return out


def _html(report: dict[str, Any], data_dir: Path) -> str:
    s = report["sequences"]
    rows = "".join(
        f"<tr><td>{html.escape(q['sequence_id'])}</td><td class={q['outcome']}>{q['outcome']}</td>"
        f"<td>{html.escape(q['reason'])}</td><td>{q['images']}</td><td>{q['planned_start'] or ''}</td>"
        f"<td>{q['started_at'] or ''}</td></tr>"
        for q in s["list"]
    )
    alerts = "".join(
        f"<tr><td>{html.escape(str(a['alert_id']))}</td><td>{a['mission']}</td><td>{a['received_at']}</td>"
        f"<td>{a['slew_command_at']}</td><td>{a['alert_to_slew_s']}</td><td>{a['first_image_at']}</td>"
        f"<td>{html.escape(json.dumps(a['injected']))}</td></tr>"
        for a in report["alerts"]
    )
    pauses = "".join(
        f"<tr><td>{p['start']}</td><td>{p['end']}</td><td>{html.escape(p['reason'])}</td></tr>"
        for p in report["pauses"]
    )
    try:
        gantt = f"<img alt='Gantt' src='data:image/png;base64,{_gantt(report)}'>"
    except Exception as exc:  # a report without its plot is still a report
        gantt = f"<p>(no Gantt plot: {html.escape(repr(exc))})</p>"
    thumbs = "".join(
        f"<figure><img src='data:image/png;base64,{b64}'><figcaption>{html.escape(Path(rel).name)}</figcaption></figure>"
        for rel, b64 in _thumbs(report, data_dir)
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>PyROS night {report["night"]}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}
.completed{{color:#2e7d32}} .interrupted{{color:#ef6c00}} .failed{{color:#c62828}} figure{{display:inline-block;margin:4px}} figcaption{{font-size:10px}}</style></head><body>
<h1>Night {report["night"]} at {html.escape(report["site"])} ({report["telescope"]})</h1>
<p>Dusk {report["dusk"]}, dawn {report["dawn"]}. {s["scheduled"]} sequences scheduled: {s["completed"]} completed,
{s["interrupted"]} interrupted, {s["failed"]} failed. {report["images"]} images ({report["calibration_images"]} calibration frames),
{report["schedule_versions"]} schedule versions; simulated in {report["wall_time_s"]} s of wall time.</p>
<h2>Planned and executed</h2>{gantt}
<h2>Alerts</h2><table><tr><th>alert</th><th>mission</th><th>received</th><th>slew command</th><th>to slew [s]</th><th>first image</th><th>injected</th></tr>{alerts}</table>
<h2>Pauses</h2><table><tr><th>start</th><th>end</th><th>why</th></tr>{pauses}</table>
<h2>Sequences</h2><table><tr><th>sequence</th><th>outcome</th><th>reason</th><th>images</th><th>planned</th><th>started</th></tr>{rows}</table>
<h2>Images</h2>{thumbs}
<p>Data: {html.escape(report["data_dir"])}</p></body></html>
"""
