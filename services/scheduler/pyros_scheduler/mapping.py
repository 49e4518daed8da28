"""Request documents + site + night -> kernel input (the only place that knows about the sky).

Times handed to the kernel are seconds after dusk. Sequence ids are the ones routines gave at
acceptance (``Sequence.id``), the same in the plan, the schedule and the observations; a
document without them (``pyros schedule`` on a file) uses ``"<request>/<sequence>"``. ``NightInput.info`` keeps, per kernel
sequence, what the sky side needs to read the result back (names, target, constraints).

Weights: ``programs.priority.weight``, the one priority scheme (routines shows the same
priority); alert requests sit above every routine. The kernel's transition
model carries the slew (great circle at ``slew_rate_deg_s`` + ``settle_s``) and the filter
change, so the fixed slew overhead of ``sequence_duration_s`` is not counted twice.
Several telescopes (a node, ``node_parameters``): the kernel has one transition model and
one duration per sequence, so the node's slowest slew, longest settle and, field by field,
largest overheads are used: a plan valid on the slowest telescope is valid on all of them.
Multi-night planning happens here: a sequence is offered on every night from its date to
its date + ``carry_over_nights``; call ``kernel_input`` once per night with what is left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field

from pyros_common._iers import configure_offline_iers
from pyros_common.domain.programs.priority import weight
from pyros_common.domain.programs.quotas import Grade
from pyros_common.domain.requests import Request, RequestKind, Strategy
from pyros_common.domain.requests import Sequence as Sequence_
from pyros_common.domain.requests.durations import on_target_duration_s
from pyros_common.domain.sky.constraints import Constraints
from pyros_common.domain.sky.night import night_bounds
from pyros_common.domain.sky.overheads import DEFAULT_PROFILE, OVERHEADS, Overheads, node_overheads
from pyros_common.domain.sky.sites import Site, Telescope
from pyros_common.domain.sky.visibility import visibility_windows_s
from pyros_common.domain.sky.windows import WINDOW_STEP_S

from pyros_scheduler.kernel import GreatCircleTransition, KernelInput, KSequence

configure_offline_iers()  # offline IERS tables before any astropy time transform


@dataclass(frozen=True)
class SequenceInfo:
    """The sky side of one kernel sequence."""

    request_id: str
    request: str  # request document "name"
    sequence: str  # sequence "name"
    program: str
    target: str
    ra_deg: float
    dec_deg: float
    constraints: Constraints
    nights_carried: int
    alert: bool
    # False when the request's validity (alerts) does not meet the night at all
    valid_tonight: bool = True


@dataclass(frozen=True)
class NightInput:
    """A kernel input for one night plus what is needed to read its result back."""

    kernel: KernelInput
    dusk: dt.datetime
    dawn: dt.datetime
    info: tuple[SequenceInfo, ...] = field(default=())

    def to_utc(self, seconds: float) -> dt.datetime:
        return self.dusk + dt.timedelta(seconds=seconds)

    def to_s(self, when: dt.datetime) -> float:
        """Seconds after dusk of ``when``."""
        return (when - self.dusk).total_seconds()


@dataclass(frozen=True)
class NodeParameters:
    """What the kernel uses for a node: one slew rate, one settle time, one overhead set."""

    n_telescopes: int
    slew_rate_deg_s: float
    settle_s: float
    overheads: Overheads


def node_parameters(telescopes: Sequence[Telescope]) -> NodeParameters:
    """The conservative common parameters of ``telescopes`` (see the module docstring)."""
    if not telescopes:
        raise ValueError("a node has at least one telescope")
    overheads = node_overheads(t.overheads for t in telescopes)
    return NodeParameters(
        n_telescopes=len(telescopes),
        slew_rate_deg_s=min(t.slew_rate_deg_s for t in telescopes),
        settle_s=max(t.settle_s for t in telescopes),
        overheads=overheads,
    )


def kernel_id(request_id: str, sequence: Sequence_) -> str:
    """The sequence's id in the plan: the one routines gave it at acceptance (else request/name)."""
    return sequence.id or f"{request_id}/{sequence.name}"


def nights_carried(date: dt.date | str, carry_over: int, night: dt.date) -> int | None:
    """Nights since the sequence's date, or None when ``night`` is outside its allowed span."""
    if date == "tonight" or not isinstance(date, dt.date):
        return 0
    delta = (night - date).days
    return delta if 0 <= delta <= carry_over else None


def kernel_input(
    requests: Sequence[Request],
    *,
    site: Site,
    night: dt.date,
    grades: Mapping[str, Grade],
    quotas_s: Mapping[str, float] | None = None,
    n_telescopes: int = 1,
    overheads: Overheads | None = None,
    slew_rate_deg_s: float = 3.0,
    settle_s: float = 10.0,
    skip: Container[str] = (),
) -> NightInput:
    """Map stored requests to the kernel for ``night`` (local date of the evening).

    ``skip`` holds kernel ids (``"<request>/<sequence>"``) to leave out (done or failed).
    """
    oh = overheads if overheads is not None else OVERHEADS[DEFAULT_PROFILE]
    dusk, dawn = night_bounds(site, night)
    seqs: list[KSequence] = []
    ras: list[float] = []
    decs: list[float] = []
    filters: list[str] = []
    cons: list[Constraints] = []
    clip: list[tuple[float, float]] = []
    info: list[SequenceInfo] = []
    night_s = (dawn - dusk).total_seconds()
    for req in requests:
        rid = req.id or req.name
        alert = req.kind is RequestKind.ALERT
        lo = (req.valid_from - dusk).total_seconds() if req.valid_from else 0.0
        hi = (req.valid_until - dusk).total_seconds() if req.valid_until else night_s
        for s in req.sequences:
            carried = nights_carried(s.date, s.carry_over_nights, night)
            kid = kernel_id(rid, s)
            if carried is None or kid in skip:
                continue
            w = weight(
                grade=grades.get(req.program, Grade.C),
                priority_offset=s.priority_offset,
                nights_carried=carried,
                alert_priority=(req.priority or 0) if alert else None,
            )
            dur = on_target_duration_s(s, oh)
            seqs.append(
                KSequence(
                    id=kid,
                    duration_s=dur,
                    weight=w,
                    windows=(),
                    mandatory=s.mandatory,
                    request_id=rid,
                    all_or_nothing=req.strategy is Strategy.ALL_OR_NOTHING,
                    program=req.program,
                )
            )
            ras.append(s.target.ra_deg)
            decs.append(s.target.dec_deg)
            first = s.albums[0].plans[0].filter if s.albums and s.albums[0].plans else ""
            filters.append(first)
            c = s.constraints
            cons.append(
                Constraints(
                    min_altitude_deg=c.min_altitude_deg,
                    max_airmass=c.max_airmass,
                    min_moon_separation_deg=c.min_moon_separation_deg,
                    max_moon_illumination=c.max_moon_illumination,
                )
            )
            clip.append((lo, hi))
            info.append(
                SequenceInfo(
                    request_id=rid,
                    request=req.name,
                    sequence=s.name,
                    program=req.program,
                    target=s.target.name,
                    ra_deg=s.target.ra_deg,
                    dec_deg=s.target.dec_deg,
                    constraints=cons[-1],
                    nights_carried=carried,
                    alert=alert,
                    valid_tonight=hi > max(lo, 0.0) and lo < night_s,
                )
            )
    wins = visibility_windows_s(site, ras, decs, cons, dusk, dawn, step_s=WINDOW_STEP_S) if seqs else []
    out = []
    for k, sq in enumerate(seqs):
        lo, hi = clip[k]
        win = tuple((max(a, lo), min(b, hi)) for a, b in wins[k] if min(b, hi) > max(a, lo))
        out.append(
            KSequence(
                sq.id,
                sq.duration_s,
                sq.weight,
                win,
                sq.mandatory,
                sq.request_id,
                sq.all_or_nothing,
                sq.program,
            )
        )
    tr = GreatCircleTransition(
        ras,
        decs,
        slew_rate_deg_s=slew_rate_deg_s,
        settle_s=settle_s,
        filters=filters,
        filter_change_s=oh.filter_change_s,
    )
    kin = KernelInput(out, (0.0, night_s), n_telescopes, dict(quotas_s or {}), tr)
    return NightInput(kin, dusk, dawn, tuple(info))
