"""Gantt chart of a night plan: telescopes' timelines above, altitudes and the Moon below."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from pyros_common.domain.sky._engine import _moon, _sun_altitude
from pyros_common.domain.sky.sites import Site
from pyros_common.domain.sky.visibility import altitude_deg

from pyros_scheduler.planner import NightPlan

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
ALERT_COLOUR = "#d62728"
MARGIN = dt.timedelta(minutes=75)


def _num(t: Any) -> Any:
    """Matplotlib date numbers (date2num is untyped)."""
    return mdates.date2num(t)  # type: ignore[no-untyped-call]


def _colours(plan: NightPlan) -> dict[str, str]:
    progs = sorted({s.program for s in plan.scheduled if not s.info.alert})
    return {p: PALETTE[k % len(PALETTE)] for k, p in enumerate(progs)}


def gantt(plan: NightPlan, site: Site, path: Path, *, title: str | None = None) -> Path:
    """Draw ``plan`` to ``path`` (PNG): one row per telescope, altitude curves, twilights, Moon."""
    t0, t1 = plan.dusk - MARGIN, plan.dawn + MARGIN
    span = (t1 - t0).total_seconds()
    seconds = np.arange(0.0, span + 120.0, 120.0)
    times = [t0 + dt.timedelta(seconds=float(s)) for s in seconds]
    tnum = _num(times)
    sun = _sun_altitude(site, t0, seconds)
    moon = _moon(site, t0, seconds)

    n_tel = len(plan.telescopes)
    fig, (ax, ax2) = plt.subplots(
        2,
        1,
        figsize=(16, 4.6 + 1.4 * n_tel),
        sharex=True,
        gridspec_kw={"height_ratios": [0.6 + 1.3 * n_tel, 3.0], "hspace": 0.06},
    )
    colours = _colours(plan)

    for a in (ax, ax2):
        # twilight shading: darker as the Sun goes down
        for hi, lo, alpha in ((0.0, -6.0, 0.12), (-6.0, -12.0, 0.22), (-12.0, -18.0, 0.32)):
            band = (sun < hi) & (sun >= lo)
            band = band | np.roll(band, 1) | np.roll(band, -1)  # no white slivers between bands
            a.fill_between(
                tnum, 0, 1, where=band, color="#203060", alpha=alpha, lw=0, transform=a.get_xaxis_transform()
            )
        a.fill_between(
            tnum, 0, 1, where=sun >= 0, color="#f6e8a8", alpha=0.5, lw=0, transform=a.get_xaxis_transform()
        )
        for edge in (plan.dusk, plan.dawn):
            a.axvline(_num(edge), color="k", lw=1.2, ls="--")

    # --- timelines
    for row, tel in enumerate(plan.telescopes):
        y = n_tel - 1 - row
        ax.barh(
            y,
            _num(plan.dawn) - _num(plan.dusk),
            left=_num(plan.dusk),
            height=0.8,
            color="#f2f2f2",
            edgecolor="#cccccc",
            zorder=1,
        )
        mine = [s for s in plan.scheduled if s.telescope == tel]
        for s in mine:
            x0, x1 = _num(s.start), _num(s.end)
            c = ALERT_COLOUR if s.info.alert else colours[s.program]
            interrupted = f"{s.request}/{s.sequence}" in plan.interrupted
            ax.barh(
                y,
                x1 - x0,
                left=x0,
                height=0.8,
                color=c,
                edgecolor="white",
                lw=0.8,
                zorder=2,
                hatch="//" if interrupted else None,
            )
            minutes = (s.end - s.start).total_seconds() / 60
            label = s.info.target if not s.info.alert else f"{s.info.target}\n{s.sequence}"
            wide = minutes >= 40
            ax.text(
                (x0 + x1) / 2,
                y,
                label,
                rotation=0 if wide else 90,
                ha="center",
                va="center",
                fontsize=8 if wide else 7,
                color="white",
                zorder=3,
                fontweight="bold",
                linespacing=0.9,
            )
    ax.set_yticks(range(n_tel), list(reversed(plan.telescopes)))
    ax.set_ylim(-0.6, n_tel - 0.4)
    n_all = len(plan.scheduled) + len(plan.unscheduled)
    ax.set_title(
        title
        or f"{site.name} — night of {plan.night} — {len(plan.scheduled)} of {n_all} sequences placed, "
        f"objective {plan.objective:,.0f}",
        fontsize=12,
        loc="left",
    )
    handles = [Patch(color=c, label=p) for p, c in colours.items()]
    if any(s.info.alert for s in plan.scheduled):
        handles.append(Patch(color=ALERT_COLOUR, label="alert"))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        fontsize=9,
        title="program",
        frameon=False,
    )

    # --- altitudes: thin over the night, thick while scheduled
    if plan.scheduled:
        ras = [s.info.ra_deg for s in plan.scheduled]
        decs = [s.info.dec_deg for s in plan.scheduled]
        alt = altitude_deg(site, ras, decs, times)
        for s, curve in zip(plan.scheduled, alt, strict=True):
            c = ALERT_COLOUR if s.info.alert else colours[s.program]
            ax2.plot(tnum, curve, color=c, lw=0.6, alpha=0.35)
            on = (np.asarray(times) >= s.start) & (np.asarray(times) <= s.end)
            ax2.plot(tnum[on], curve[on], color=c, lw=3.0, solid_capstyle="butt")
    ax2.plot(
        tnum,
        moon.alt_deg,
        color="#555555",
        lw=1.8,
        ls=(0, (4, 2)),
        label=f"Moon ({np.mean(moon.illumination):.0%} lit)",
    )
    ax2.axhline(30.0, color="#999999", lw=0.8, ls=":")
    ax2.text(tnum[2], 31, "30° (airmass 2)", fontsize=8, color="#666666", va="bottom")
    ax2.set_ylim(0, 90)
    ax2.set_ylabel("altitude [deg]")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9, frameon=False)
    for edge, name in ((plan.dusk, "dusk −18°"), (plan.dawn, "dawn −18°")):
        ax2.text(
            _num(edge),
            87,
            f" {name} {edge:%H:%M}",
            fontsize=8,
            va="top",
            ha="left" if edge == plan.dusk else "right",
        )
    ax2.xaxis.set_major_locator(mdates.HourLocator(tz=dt.UTC))  # type: ignore[no-untyped-call]
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=dt.UTC))  # type: ignore[no-untyped-call]
    ax2.set_xlim(tnum[0], tnum[-1])
    ax2.set_xlabel(f"UTC ({plan.dusk:%Y-%m-%d} → {plan.dawn:%Y-%m-%d})")
    ax2.grid(axis="x", color="#dddddd", lw=0.6)
    fig.subplots_adjust(left=0.05, right=0.89, top=0.93, bottom=0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.rename(path)
    return path
