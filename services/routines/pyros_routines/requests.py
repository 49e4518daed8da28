"""Routines' use cases for requests: check (night, visibility, quota), store, read, cancel, settle.

Keyword-only, one session each. The one admission gate: every request, alert requests
included (``admission``), goes through ``check_request``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pyros_common.auth import CurrentUser
from pyros_common.contracts import RequestChanged
from pyros_common.db.models import Album as AlbumRow
from pyros_common.db.models import Plan as PlanRow
from pyros_common.db.models import Program, QuotaEntry
from pyros_common.db.models import Request as RequestRow
from pyros_common.db.models import Sequence as SequenceRow
from pyros_common.domain.programs.quotas import (
    Semester,
    check_quota,
)
from pyros_common.domain.requests import Request, RequestKind
from pyros_common.domain.requests.document import export_document, import_document
from pyros_common.domain.requests.durations import sequence_duration_s
from pyros_common.domain.requests.states import (
    TERMINAL,
    IllegalTransition,
    State,
    advance,
    transition,
)
from pyros_common.domain.sky.constraints import Constraints
from pyros_common.domain.sky.night import NoNight, night_bounds, resolve_night
from pyros_common.domain.sky.overheads import Overheads, node_overheads
from pyros_common.domain.sky.sites import Site
from pyros_common.domain.sky.visibility import explain_invisible, visibility_windows
from pyros_common.domain.sky.windows import WINDOW_STEP_S
from pyros_common.problem import ProblemError, validation_problem
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session, defer, selectinload

from pyros_routines import models as m
from pyros_routines.domain.ids import with_sequence_ids
from pyros_routines.programs import quota

Window = tuple[dt.datetime, dt.datetime]


@dataclass
class SequencePlan:
    """What submission decided for one sequence."""

    night: dt.date
    duration_s: float
    windows: list[Window]
    chosen: int


@dataclass
class Checked:
    """A request that passed every check, with its sequences' nights, windows and durations."""

    request: Request
    plans: list[SequencePlan]
    quotas: list[m.QuotaPublic] = field(default_factory=list)
    grade: str | None = None  # the program's, read by the check (the event carries it)

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.plans)


def parse_document(*, document: Any, user: CurrentUser, request_id: str | None = None) -> Request:
    """A domain request from a request document; 422 naming the field when invalid."""
    try:
        return import_document(document, user=user.username, id=request_id)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def _nights(site: Site, request: Request, now: dt.datetime) -> list[list[dt.date]]:
    out: list[list[dt.date]] = []
    for i, seq in enumerate(request.sequences):
        try:
            first = resolve_night(site, seq.date, now)
        except ValueError as exc:
            raise ProblemError(
                422, f"sequences.{i}.date: {exc}", kind="bad-date", errors=[(f"sequences.{i}.date", str(exc))]
            ) from None
        out.append([first + dt.timedelta(days=k) for k in range(seq.carry_over_nights + 1)])
    return out


def _windows_by_night(
    site: Site, request: Request, nights: list[list[dt.date]], durations: list[float], now: dt.datetime
) -> dict[tuple[int, dt.date], list[Window]]:
    """Windows at least as long as each sequence, after ``now``, for each of its allowed nights."""
    out: dict[tuple[int, dt.date], list[Window]] = {}
    for night in sorted({n for ns in nights for n in ns}):
        idx = [i for i, ns in enumerate(nights) if night in ns]
        try:
            dusk, dawn = night_bounds(site, night)
        except NoNight:
            for i in idx:
                out[(i, night)] = []
            continue
        seqs = [request.sequences[i] for i in idx]
        found = visibility_windows(
            site,
            [s.target.ra_deg for s in seqs],
            [s.target.dec_deg for s in seqs],
            [s.constraints.to_visibility() for s in seqs],
            dusk,
            dawn,
            step_s=WINDOW_STEP_S,
        )
        lo = max(now, request.valid_from) if request.valid_from else now
        hi = request.valid_until
        for i, wins in zip(idx, found, strict=True):
            clipped = [(max(a, lo), b if hi is None else min(b, hi)) for a, b in wins]
            clipped = [(a, b) for a, b in clipped if b > a]
            out[(i, night)] = [(a, b) for a, b in clipped if (b - a).total_seconds() >= durations[i]]
    return out


def _invisible_reason(
    site: Site, ra: float, dec: float, cons: Constraints, night: dt.date, now: dt.datetime, need_s: float
) -> str:
    try:
        dusk, dawn = night_bounds(site, night)
    except NoNight as exc:
        return str(exc)
    why = explain_invisible(site, ra, dec, cons, dusk, dawn, now=now, min_duration_s=need_s)
    return why or f"no window of {need_s / 60:.0f} min left in the night"


def check_request(
    *,
    session: Session,
    user: CurrentUser,
    request: Request,
    site: Site,
    now: dt.datetime,
    overheads: Overheads | None = None,
) -> Checked:
    """Permissions, nights, visibility and quota of a request; ProblemError on the first failure."""
    program = session.get(Program, request.program)
    if program is None or (not user.sees_all and request.program not in user.programs):
        if program is not None:
            raise ProblemError(
                403,
                f"you are not a member of program {request.program}",
                kind="forbidden",
                errors=[("program", "not a member")],
            )
        raise ProblemError(
            422, f"unknown program {request.program}", kind="unknown-program", errors=[("program", "unknown")]
        )
    if request.kind is RequestKind.ALERT and not user.sees_all:
        raise ProblemError(
            403, "only experts and admins submit alert requests", kind="forbidden", errors=[("kind", "alert")]
        )
    oh = overheads or site_overheads(site)
    durations = [sequence_duration_s(s, oh) for s in request.sequences]
    nights = _nights(site, request, now)
    windows = _windows_by_night(site, request, nights, durations, now)
    plans: list[SequencePlan] = []
    refusals: list[tuple[str, str]] = []
    for i, seq in enumerate(request.sequences):
        chosen_night = next((n for n in nights[i] if windows[(i, n)]), None)
        if chosen_night is None:
            why = _invisible_reason(
                site,
                seq.target.ra_deg,
                seq.target.dec_deg,
                seq.constraints.to_visibility(),
                nights[i][0],
                now,
                durations[i],
            )
            if request.valid_until is not None and why.startswith("no window of"):
                why = (
                    f"no window of {durations[i] / 60:.0f} min within its validity "
                    f"({request.valid_from:%Y-%m-%d %H:%M} to {request.valid_until:%Y-%m-%d %H:%M} UTC)"
                    if request.valid_from
                    else f"no window of {durations[i] / 60:.0f} min before {request.valid_until:%H:%M} UTC"
                )
            span = (
                f"night {nights[i][0]}" if len(nights[i]) == 1 else f"nights {nights[i][0]}..{nights[i][-1]}"
            )
            refusals.append(
                (f"sequences.{i}", f"{seq.name} ({seq.target.name}) never observable on {span}: {why}")
            )
            continue
        wins = windows[(i, chosen_night)]
        longest = max(range(len(wins)), key=lambda k: wins[k][1] - wins[k][0])
        plans.append(SequencePlan(chosen_night, durations[i], wins, longest))
    if refusals:
        raise ProblemError(
            422,
            "; ".join(msg for _, msg in refusals),
            kind="not-observable",
            title="Not observable",
            errors=refusals,
        )
    lock_program(session=session, code=program.code)
    need: dict[Semester, float] = {}
    for p in plans:
        sem = Semester.of(p.night)
        need[sem] = need.get(sem, 0.0) + p.duration_s
    quotas = []
    for sem, seconds in sorted(need.items()):
        q = quota(session=session, program=program, semester=sem, site=site)
        quotas.append(q)
        decision = check_quota(q.allocated_s, q.booked_s, q.used_s, seconds)
        if not decision.ok and not request.quota_override:
            reason = f"program {program.code}, semester {sem}: {decision.reason}"
            raise ProblemError(
                409, reason, kind="over-quota", title="Over quota", errors=[("program", reason)]
            )
    return Checked(request=request, plans=plans, quotas=quotas, grade=program.grade)


def lock_program(*, session: Session, code: str) -> None:
    """Hold program ``code``'s row until the transaction ends, so that reading its quota and booking
    on it are one step: concurrent submissions on one program take turns.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the row. SQLite has no row locks: a no-op write on the
    row takes the database's write lock first (the next writer waits for this commit), and the
    quota read after it sees every booking committed before."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Program).where(Program.code == code).values(name=Program.name))
    else:
        session.execute(select(Program.code).where(Program.code == code).with_for_update())


def lock_requests(*, session: Session, request_ids: Iterable[str]) -> None:
    """Hold these requests' rows until the transaction ends, taken in id order.

    Every writer of a request, its sequences or their booked time takes this lock first, so
    that handlers running at once (a schedule, an observation's progress, a cancellation) never
    lock one request's rows in different orders: PostgreSQL breaks such a cycle only after its
    ``deadlock_timeout`` (1 s), by failing one of them. A request's lock comes before its
    program's (``lock_program``). SQLite locks the whole database at the first write: no-op.
    """
    ids = sorted(set(request_ids))
    if not ids or session.get_bind().dialect.name == "sqlite":
        return
    session.execute(
        select(RequestRow.id).where(RequestRow.id.in_(ids)).order_by(RequestRow.id).with_for_update()
    )


def preview(*, checked: Checked) -> m.ValidationReport:
    """The validation report of a checked request."""
    return m.ValidationReport(
        duration_s=round(checked.duration_s, 1),
        sequences=[
            m.SequencePreview(
                name=s.name,
                night=p.night,
                duration_s=round(p.duration_s, 1),
                windows=[_window(a, b) for a, b in p.windows],
                chosen_window=p.chosen,
            )
            for s, p in zip(checked.request.sequences, checked.plans, strict=True)
        ],
        quotas=checked.quotas,
    )


def _window(a: dt.datetime, b: dt.datetime) -> m.WindowPublic:
    return m.WindowPublic(start=a, end=b, duration_s=round((b - a).total_seconds(), 1))


def new_request_id() -> str:
    """A fresh request id."""
    return f"r-{uuid.uuid4().hex[:16]}"


def request_rows(
    request: Request,
    request_id: str,
    state: str,
    now: dt.datetime,
    plans: list[SequencePlan] | None,
    durations: list[float],
    keep: dict[str, str] | None = None,
) -> RequestRow:
    request = with_sequence_ids(request, request_id, keep)
    row = RequestRow(
        id=request_id,
        name=request.name,
        program_code=request.program,
        owner=request.user,
        kind=request.kind.value,
        strategy=request.strategy.value,
        state=state,
        reason="",
        alert_id=request.alert_id,
        document=export_document(request),
        created_at=now,
        updated_at=now,
    )
    for i, seq in enumerate(request.sequences):
        plan = plans[i] if plans else None
        assert seq.id is not None
        srow = SequenceRow(
            id=seq.id,
            name=seq.name,
            state=state,
            target_name=seq.target.name,
            ra_deg=seq.target.ra_deg,
            dec_deg=seq.target.dec_deg,
            constraints=seq.constraints.model_dump(mode="json"),
            night=plan.night if plan else None,
            priority_offset=seq.priority_offset,
            mandatory=seq.mandatory,
            carry_over_nights=seq.carry_over_nights,
            duration_s=durations[i],
            windows=[[a.isoformat(), b.isoformat()] for a, b in plan.windows] if plan else [],
            chosen_window=plan.chosen if plan else None,
        )
        for album in seq.albums:
            arow = AlbumRow(detector=album.detector.value)
            arow.plans = [
                PlanRow(
                    position=k,
                    filter=p.filter,
                    exposure_s=p.exposure_s,
                    count=p.count,
                    dither_arcsec=[list(o) for o in p.dither_arcsec],
                )
                for k, p in enumerate(album.plans)
            ]
            srow.albums.append(arow)
        row.sequences.append(srow)
    return row


def exported_document(*, row: RequestRow) -> dict[str, Any]:
    """The document an astronomer exports: what was asked, without the ids routines gave."""
    doc = dict(row.document)
    doc["sequences"] = [{k: v for k, v in q.items() if k != "id"} for q in doc.get("sequences", [])]
    return doc


def changed_event(*, row: RequestRow, action: str) -> RequestChanged:
    """The pyros.requests event for ``row`` after ``action``."""
    return RequestChanged(
        request_id=row.id,
        action=action,
        state=row.state,
        kind=row.kind,
        program=row.program_code,
        owner=row.owner,
        reason=row.reason,
        document=row.document,
    )


def store_request(
    *, session: Session, checked: Checked, now: dt.datetime
) -> tuple[RequestRow, RequestChanged]:
    """Store an accepted request, book its time, and return the event announcing it."""
    request = checked.request
    request_id = request.id or new_request_id()
    state = advance(State.DRAFT, State.ACCEPTED)  # draft -> submitted -> accepted
    row = request_rows(request, request_id, state, now, checked.plans, [p.duration_s for p in checked.plans])
    session.add(row)
    book_time(session, request.program, request_id, row.sequences, checked.plans)
    session.flush()
    return row, changed_event_with_grade(session=session, row=row, action="accepted", grade=checked.grade)


def book_time(
    session: Session, program: str, request_id: str, rows: list[SequenceRow], plans: list[SequencePlan]
) -> None:
    """Book each sequence's time on its night's semester (alert requests too, even over quota)."""
    for srow, plan in zip(rows, plans, strict=True):
        session.add(
            QuotaEntry(
                program_code=program,
                semester=str(Semester.of(plan.night)),
                request_id=request_id,
                sequence_id=srow.id,
                booked_s=plan.duration_s,
                used_s=0.0,
                released=False,
            )
        )


def get_request(*, session: Session, user: CurrentUser, request_id: str) -> RequestRow:
    """The request if the user may see it; 404 otherwise (others' requests do not exist for them)."""
    row = session.scalar(
        select(RequestRow).where(RequestRow.id == request_id).options(selectinload(RequestRow.sequences))
    )
    if row is None or not user.sees_program(row.program_code):
        raise ProblemError(404, f"no request {request_id}", kind="not-found")
    return row


def list_requests(
    *,
    session: Session,
    user: CurrentUser,
    program: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    owner: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RequestRow], int]:
    """The requests the user may see, filtered, newest first, and how many match in all."""
    q = select(RequestRow).where(*_listing_filters(user, program, state, kind, owner))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    # Two queries whatever the page size; the stored documents and constraints, which the public
    # view does not show, are not read (nor JSON-decoded) for every row.
    rows = session.scalars(
        q.order_by(RequestRow.created_at.desc(), RequestRow.id.desc())
        .limit(limit)
        .offset(offset)
        .options(
            defer(RequestRow.document, raiseload=True),
            selectinload(RequestRow.sequences).defer(SequenceRow.constraints, raiseload=True),
        )
    ).all()
    return list(rows), int(total)


def _listing_filters(
    user: CurrentUser, program: str | None, state: str | None, kind: str | None, owner: str | None
) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if not user.sees_all:
        out.append(RequestRow.program_code.in_(sorted(user.programs)))
    if program is not None:
        out.append(RequestRow.program_code == program)
    if state is not None:
        out.append(RequestRow.state == state)
    if kind is not None:
        out.append(RequestRow.kind == kind)
    if owner is not None:
        out.append(RequestRow.owner == owner)
    return out


_HEAD = (
    RequestRow.id,
    RequestRow.name,
    RequestRow.program_code,
    RequestRow.owner,
    RequestRow.kind,
    RequestRow.strategy,
    RequestRow.state,
    RequestRow.reason,
    RequestRow.alert_id,
    RequestRow.created_at,
    RequestRow.updated_at,
)
_SEQUENCE = (
    SequenceRow.request_id,
    SequenceRow.id,
    SequenceRow.name,
    SequenceRow.state,
    SequenceRow.target_name,
    SequenceRow.ra_deg,
    SequenceRow.dec_deg,
    SequenceRow.night,
    SequenceRow.duration_s,
    SequenceRow.priority_offset,
    SequenceRow.mandatory,
    SequenceRow.carry_over_nights,
    SequenceRow.windows,
    SequenceRow.chosen_window,
)


def list_public(
    *,
    session: Session,
    user: CurrentUser,
    program: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    owner: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> m.RequestsPublic:
    """A page of the requests the user may see, newest first: three indexed queries (count, page,
    its sequences) whatever the page size, reading only the columns the public view shows."""
    where = _listing_filters(user, program, state, kind, owner)
    total = session.scalar(select(func.count()).select_from(RequestRow).where(*where)) or 0
    heads = session.execute(
        select(*_HEAD)
        .where(*where)
        .order_by(RequestRow.created_at.desc(), RequestRow.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    by_request: dict[str, list[Any]] = {h.id: [] for h in heads}
    if by_request:
        for srow in session.execute(
            select(*_SEQUENCE).where(SequenceRow.request_id.in_(list(by_request))).order_by(SequenceRow.id)
        ):
            by_request[srow.request_id].append(srow)
    items = [_request_public(h, h.program_code, by_request[h.id]) for h in heads]
    return m.RequestsPublic(items=items, total=int(total), limit=limit, offset=offset)


def give_back(*, session: Session, sequence_ids: list[str], used: bool = False) -> None:
    """Release the booked time of these sequences (``used``: it was spent on the sky instead)."""
    if not sequence_ids:
        return
    for entry in session.scalars(
        select(QuotaEntry)
        .where(QuotaEntry.sequence_id.in_(sequence_ids))
        .where(QuotaEntry.released.is_(False))
    ):
        if used:
            entry.used_s += entry.booked_s
        entry.booked_s = 0.0
        entry.released = True


def cancel_request(
    *, session: Session, user: CurrentUser, request_id: str, now: dt.datetime, reason: str = ""
) -> tuple[RequestRow, RequestChanged]:
    """Cancel a request and its unfinished sequences, give their time back; 409 if already final."""
    lock_requests(session=session, request_ids=[request_id])
    row = get_request(session=session, user=user, request_id=request_id)
    row.reason = reason or f"cancelled by {user.username}"
    cancel_row(session=session, row=row, now=now)
    return row, changed_event_with_grade(session=session, row=row, action="cancelled")


def cancel_row(*, session: Session, row: RequestRow, now: dt.datetime) -> None:
    """Cancel ``row`` and its unfinished sequences and give their time back; 409 if already final."""
    try:
        row.state = transition(row.state, State.CANCELLED)
    except IllegalTransition as exc:
        raise ProblemError(409, str(exc), kind="illegal-transition", errors=[("state", row.state)]) from None
    row.updated_at = now
    open_seqs = [s for s in row.sequences if State(s.state) not in TERMINAL]
    for s in open_seqs:
        s.state = transition(s.state, State.CANCELLED)
    give_back(session=session, sequence_ids=[s.id for s in open_seqs])
    session.flush()


def request_public(*, row: RequestRow) -> m.RequestPublic:
    """The public view of a request row."""
    return _request_public(row, row.program_code, sorted(row.sequences, key=lambda s: s.id))


def _request_public(row: Any, program: str, seqs: list[Any]) -> m.RequestPublic:
    # ``row`` and ``seqs``: ORM rows or selected columns, with the same attribute names.
    return m.RequestPublic(
        id=row.id,
        name=row.name,
        program=program,
        owner=row.owner,
        kind=row.kind,
        strategy=row.strategy,
        state=row.state,
        reason=row.reason,
        alert_id=row.alert_id,
        duration_s=round(sum(s.duration_s for s in seqs), 1),
        created_at=row.created_at,
        updated_at=row.updated_at,
        sequences=[
            m.SequencePublic(
                id=s.id,
                name=s.name,
                state=s.state,
                target_name=s.target_name,
                ra_deg=s.ra_deg,
                dec_deg=s.dec_deg,
                night=s.night,
                duration_s=round(s.duration_s, 1),
                priority_offset=s.priority_offset,
                mandatory=s.mandatory,
                carry_over_nights=s.carry_over_nights,
                windows=[
                    _window(dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for a, b in s.windows
                ],
                chosen_window=s.chosen_window,
            )
            for s in seqs
        ],
    )


def site_overheads(site: Site) -> Overheads:
    """The overheads routines charges: the node's largest (one telescope: its own profile)."""
    return node_overheads(t.overheads for t in site.telescopes)


def _grade(session: Session, program: str) -> str | None:
    row = session.get(Program, program)
    return None if row is None else row.grade


def changed_event_with_grade(
    *, session: Session, row: RequestRow, action: str, grade: str | None = None
) -> RequestChanged:
    """``changed_event`` plus the program's grade (the scheduler's priority), read here unless given."""
    ev = changed_event(row=row, action=action)
    grade = grade if grade is not None else _grade(session, row.program_code)
    return ev if grade is None else ev.model_copy(update={"grade": grade})


def set_state(*, row: RequestRow | SequenceRow, target: str) -> bool:
    """Move ``row`` to ``target`` along the state table; False (unchanged) when no path exists."""
    try:
        row.state = advance(row.state, target)
    except (IllegalTransition, ValueError):
        return False
    return True


def settle_request(*, row: RequestRow, now: dt.datetime) -> str | None:
    """The request's final action once every sequence is final (completed, partial or failed), else None."""
    states = [State(s.state) for s in row.sequences]
    if not states or any(s not in TERMINAL and s is not State.PARTIAL for s in states):
        return None
    done = [s for s in states if s is State.COMPLETED]
    mandatory_failed = any(State(s.state) is not State.COMPLETED and s.mandatory for s in row.sequences)
    if len(done) == len(states):
        target = State.COMPLETED
    elif not done or (row.strategy == "all_or_nothing" and mandatory_failed):
        target = State.FAILED
    else:
        target = State.PARTIAL
    if State(row.state) is target or not set_state(row=row, target=target):
        return None
    row.updated_at = now
    return target.value
