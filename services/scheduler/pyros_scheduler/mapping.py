"""Request documents + site + night -> kernel input (the only place that knows about the sky).

Times handed to the kernel are seconds after dusk. Sequence ids are the ones routines gave at
acceptance (``Sequence.id``), the same in the plan, the schedule and the observations; a
document without them (``pyros schedule`` on a file) uses ``"<request>/<sequence>"``. ``NightInput.info`` keeps, per kernel
sequence, what the sky side needs to read the result back (names, target, constraints).

Weights: ``programs.priority.weight``, the one priority scheme (routines shows the same
priority); alert requests sit above every routine, and an alert whose strategy gives a
``decay_index`` is time-critical: its value decays from its reception (``valid_from``) with
``priority.time_critical_factor``. ``KSequence.key`` fingerprints the target and filter, so a
moved target makes the sequence a new one for ``reschedule``. The kernel's transition
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
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pyros_common._iers import configure_offline_iers
from pyros_common.domain.programs.priority import DEFAULT_DECAY_SCALE_S, weight
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

    @cached_property
    def index(self) -> dict[str, int]:
        """Each kernel id's position in ``kernel.sequences`` (built once per input)."""
        return {s.id: k for k, s in enumerate(self.kernel.sequences)}

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


@dataclass(frozen=True)
class _Row:
    """What one sequence maps to, before its windows (cached between replans)."""

    ksq: KSequence
    ra: float
    dec: float
    filter: str
    cons: Constraints
    clip: tuple[float, float]
    decay: tuple[float | None, float]
    info: SequenceInfo


@dataclass
class _Mapped:
    """The previous call's output, per request in order (for a pool that only grew)."""

    key: tuple[Any, ...]
    requests: list[Request]
    ends: list[int]  # after request j, its sequences end at ends[j] in the lists below
    seqs: list[KSequence]
    ras: list[float]
    decs: list[float]
    filters: list[str]
    info: list[SequenceInfo]
    transition: GreatCircleTransition | None = None
    transition_key: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass
class MappingCache:
    """The service's cache between replans: rows and windows of unchanged requests
    (the same objects, the same night and site), the kernel sequences built from them, and
    the last call's output, whose longest unchanged prefix of requests is reused as is."""

    rows: dict[str, tuple[Any, Any, _Row]] = field(default_factory=dict)
    windows: dict[str, tuple[Any, Any, list[tuple[float, float]]]] = field(default_factory=dict)
    final: dict[str, tuple[Any, KSequence]] = field(default_factory=dict)
    last: _Mapped | None = None

    def clear(self) -> None:
        self.rows.clear()
        self.windows.clear()
        self.final.clear()
        self.last = None

    def forget(self, ids: Iterable[str]) -> None:
        for k in ids:
            self.rows.pop(k, None)
            self.windows.pop(k, None)
            self.final.pop(k, None)
        self.last = None


def _row(
    req: Request,
    s: Sequence_,
    rid: str,
    kid: str,
    alert: bool,
    carried: int,
    grades: Mapping[str, Grade],
    oh: Overheads,
    lo: float,
    hi: float,
    night_s: float,
) -> _Row:
    w = weight(
        grade=grades.get(req.program, Grade.C),
        priority_offset=s.priority_offset,
        nights_carried=carried,
        alert_priority=(req.priority or 0) if alert else None,
    )
    ksq = KSequence(
        id=kid,
        duration_s=on_target_duration_s(s, oh),
        weight=w,
        windows=(),
        mandatory=s.mandatory,
        request_id=rid,
        all_or_nothing=req.strategy is Strategy.ALL_OR_NOTHING,
        program=req.program,
    )
    c = s.constraints
    cons = Constraints(
        min_altitude_deg=c.min_altitude_deg,
        max_airmass=c.max_airmass,
        min_moon_separation_deg=c.min_moon_separation_deg,
        max_moon_illumination=c.max_moon_illumination,
    )
    # Time-critical alerts: the value decays from the alert's reception (valid_from).
    decay: tuple[float | None, float] = (None, 0.0)
    if alert and req.decay_index and req.valid_from is not None:
        decay = (lo, float(req.decay_index))
    return _Row(
        ksq,
        s.target.ra_deg,
        s.target.dec_deg,
        s.albums[0].plans[0].filter if s.albums and s.albums[0].plans else "",
        cons,
        (lo, hi),
        decay,
        SequenceInfo(
            request_id=rid,
            request=req.name,
            sequence=s.name,
            program=req.program,
            target=s.target.name,
            ra_deg=s.target.ra_deg,
            dec_deg=s.target.dec_deg,
            constraints=cons,
            nights_carried=carried,
            alert=alert,
            valid_tonight=hi > max(lo, 0.0) and lo < night_s,
        ),
    )


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
    cache: MappingCache | None = None,
) -> NightInput:
    """Map stored requests to the kernel for ``night`` (local date of the evening).

    ``skip`` holds kernel ids (``"<request>/<sequence>"``) to leave out (done or failed).
    ``cache`` (the service's, kept between replans): windows and kernel sequences of requests
    that are the same objects as last time are reused, so a replan after one new request
    computes the windows of that request only.
    """
    oh = overheads if overheads is not None else OVERHEADS[DEFAULT_PROFILE]
    dusk, dawn = night_bounds(site, night)
    # The longest prefix of requests that are the same objects as in the last call (same
    # night, site, grades, overheads and skipped ids) maps to the same output: reused as is.
    key: tuple[Any, ...] | None = None
    if cache is not None and isinstance(skip, (set, frozenset)):
        key = (night, site, oh, dict(grades), frozenset(skip))
    cut = 0
    last = cache.last if cache is not None else None
    if last is not None and key is not None and last.key == key:
        for a, b in zip(requests, last.requests, strict=False):
            if a is not b:
                break
            cut += 1
    head_end = last.ends[cut - 1] if last is not None and cut else 0
    tail_requests = requests[cut:]
    seqs: list[KSequence] = []
    ras: list[float] = []
    decs: list[float] = []
    filters: list[str] = []
    cons: list[Constraints] = []
    clip: list[tuple[float, float]] = []
    decay: list[tuple[float | None, float]] = []
    owner: list[Request] = []
    info: list[SequenceInfo] = []
    night_s = (dawn - dusk).total_seconds()
    ends: list[int] = []
    for req in tail_requests:
        rid = req.id or req.name
        alert = req.kind is RequestKind.ALERT
        lo = (req.valid_from - dusk).total_seconds() if req.valid_from else 0.0
        hi = (req.valid_until - dusk).total_seconds() if req.valid_until else night_s
        for s in req.sequences:
            carried = nights_carried(s.date, s.carry_over_nights, night)
            kid = kernel_id(rid, s)
            if carried is None or kid in skip:
                continue
            ckey = (night, grades.get(req.program, Grade.C), oh, site)
            row = cache.rows.get(kid) if cache is not None else None
            if row is not None and row[0] is req and row[1] == ckey:
                r = row[2]
            else:
                r = _row(req, s, rid, kid, alert, carried, grades, oh, lo, hi, night_s)
                if cache is not None:
                    cache.rows[kid] = (req, ckey, r)
            seqs.append(r.ksq)
            ras.append(r.ra)
            decs.append(r.dec)
            filters.append(r.filter)
            cons.append(r.cons)
            clip.append(r.clip)
            owner.append(req)
            decay.append(r.decay)
            info.append(r.info)
        ends.append(head_end + len(seqs))
    # Windows: from the cache for requests unchanged since the last call (same object, same
    # night, same site), else computed for the others in one vectorised call.
    wins: list[list[tuple[float, float]] | None] = [None] * len(seqs)
    todo: list[int] = []
    for k, sq in enumerate(seqs):
        hit = cache.windows.get(sq.id) if cache is not None else None
        if hit is not None and hit[0] is owner[k] and hit[1] == (night, site):
            wins[k] = hit[2]
        else:
            todo.append(k)
    if todo:
        got = visibility_windows_s(
            site,
            [ras[k] for k in todo],
            [decs[k] for k in todo],
            [cons[k] for k in todo],
            dusk,
            dawn,
            step_s=WINDOW_STEP_S,
        )
        for k, w in zip(todo, got, strict=True):
            fresh = list(w)
            wins[k] = fresh
            if cache is not None:
                cache.windows[seqs[k].id] = (owner[k], (night, site), fresh)
    out = []
    for k, sq in enumerate(seqs):
        lo, hi = clip[k]
        ref, index = decay[k]
        fin = cache.final.get(sq.id) if cache is not None else None
        same = (sq, wins[k])
        if fin is not None and fin[0][0] is sq and fin[0][1] is wins[k]:
            out.append(fin[1])  # the same object: reschedule's fast path reuses its arrays
            continue
        win = tuple((max(a, lo), min(b, hi)) for a, b in wins[k] or () if min(b, hi) > max(a, lo))
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
                key=f"{ras[k]:.7f} {decs[k]:.7f} {filters[k]}",
                decay_ref_s=ref,
                decay_index=index,
                decay_scale_s=DEFAULT_DECAY_SCALE_S,
            )
        )
        if cache is not None:
            cache.final[sq.id] = (same, out[-1])
    tr_key = (slew_rate_deg_s, settle_s, oh.filter_change_s)
    tr: GreatCircleTransition | None = None
    if (
        last is not None
        and cut == len(last.requests)
        and last.transition is not None
        and last.transition_key == tr_key
    ):
        # the last call's pool, grown: its transition model, extended
        tr = last.transition.extended(ras, decs, filters)
    if last is not None and cut:
        out = last.seqs[:head_end] + out
        ras = last.ras[:head_end] + ras
        decs = last.decs[:head_end] + decs
        filters = last.filters[:head_end] + filters
        info = last.info[:head_end] + info
        ends = last.ends[:cut] + ends
    if tr is None:
        tr = GreatCircleTransition(
            ras,
            decs,
            slew_rate_deg_s=slew_rate_deg_s,
            settle_s=settle_s,
            filters=filters,
            filter_change_s=oh.filter_change_s,
        )
    if cache is not None and key is not None:
        cache.last = _Mapped(key, list(requests), ends, out, ras, decs, filters, info, tr, tr_key)
    kin = KernelInput(out, (0.0, night_s), n_telescopes, dict(quotas_s or {}), tr)
    return NightInput(kin, dusk, dawn, tuple(info))
