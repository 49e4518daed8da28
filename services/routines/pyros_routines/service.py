"""Routines' use cases: users, programs, quotas and requests. Keyword-only, one session each."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError
from pyros_common.auth import CurrentUser, hash_password, hash_token, new_reset_token, verify_password
from pyros_common.contracts import RequestChanged
from pyros_common.db.models import Album as AlbumRow
from pyros_common.db.models import PasswordResetToken, Program, ProgramMember, QuotaEntry, User
from pyros_common.db.models import Plan as PlanRow
from pyros_common.db.models import Request as RequestRow
from pyros_common.db.models import Sequence as SequenceRow
from pyros_common.domain.programs.priority import GRADE_PRIORITY
from pyros_common.domain.programs.quotas import (
    Grade,
    Semester,
    allocated_s,
    check_quota,
    semester_night_time_s,
)
from pyros_common.domain.requests import Request, RequestContent, RequestKind
from pyros_common.domain.requests.document import export_document, import_document
from pyros_common.domain.requests.durations import sequence_duration_s
from pyros_common.domain.requests.states import TERMINAL, TRANSITIONS, IllegalTransition, State, transition
from pyros_common.domain.sky.constraints import Constraints
from pyros_common.domain.sky.night import NoNight, night_bounds, resolve_night, tonight
from pyros_common.domain.sky.overheads import Overheads, node_overheads
from pyros_common.domain.sky.sites import Site
from pyros_common.domain.sky.visibility import explain_invisible, visibility_windows
from pyros_common.domain.sky.windows import WINDOW_STEP_S
from pyros_common.problem import ProblemError, validation_problem
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from pyros_routines import models as m

log = structlog.get_logger("pyros.routines")
RESET_TOKEN_TTL = dt.timedelta(hours=24)

Window = tuple[dt.datetime, dt.datetime]


# --- users -----------------------------------------------------------------------------


def user_public(*, user: User) -> m.UserPublic:
    """The public view of a user row."""
    return m.UserPublic(
        id=user.id,
        username=user.username,
        email=user.email,
        role=user.role,
        active=user.active,
        programs=sorted(p.program_code for p in user.programs),
        created_at=user.created_at,
    )


def authenticate(*, session: Session, username: str, password: str) -> User:
    """The active user with these credentials; 401 (or 403 when not yet validated) otherwise."""
    user = session.scalar(select(User).where(User.username == username))
    if not verify_password(password, user.password_hash if user is not None else None) or user is None:
        raise ProblemError(401, "incorrect user name or password", kind="bad-credentials")
    if not user.active:
        raise ProblemError(403, "this account waits for an admin's validation", kind="inactive-account")
    return user


def _set_programs(session: Session, user: User, codes: list[str]) -> None:
    unknown = sorted(set(codes) - set(session.scalars(select(Program.code).where(Program.code.in_(codes)))))
    if unknown:
        raise ProblemError(
            422,
            f"unknown program(s): {', '.join(unknown)}",
            kind="unknown-program",
            errors=[("programs", f"unknown program {c}") for c in unknown],
        )
    user.programs = [ProgramMember(program_code=c) for c in dict.fromkeys(codes)]


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    now: dt.datetime,
    email: str = "",
    active: bool = False,
    programs: list[str] | None = None,
) -> User:
    """A new account; 409 when the name is taken."""
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ProblemError(409, f"user {username} exists", kind="conflict", errors=[("username", "taken")])
    user = User(
        username=username,
        email=email,
        password_hash=hash_password(password),
        role=role,
        active=active,
        created_at=now,
    )
    session.add(user)
    _set_programs(session, user, programs or [])
    session.flush()
    return user


def get_user(*, session: Session, user_id: int) -> User:
    """The user with ``user_id``; 404 otherwise."""
    user = session.get(User, user_id)
    if user is None:
        raise ProblemError(404, f"no user {user_id}", kind="not-found")
    return user


def update_user(*, session: Session, user: User, changes: m.UserUpdate, by: CurrentUser) -> User:
    """Apply an admin's changes; an admin cannot demote or deactivate themselves."""
    if user.id == by.id and (changes.active is False or (changes.role not in (None, "admin"))):
        raise ProblemError(409, "an admin cannot deactivate or demote themselves", kind="conflict")
    if changes.email is not None:
        user.email = changes.email
    if changes.role is not None:
        user.role = changes.role
    if changes.active is not None:
        user.active = changes.active
    if changes.password is not None:
        user.password_hash = hash_password(changes.password)
    if changes.programs is not None:
        _set_programs(session, user, changes.programs)
    session.flush()
    return user


def issue_reset_token(*, session: Session, user: User, now: dt.datetime) -> m.ResetTokenPublic:
    """A single-use reset token for ``user``; only its hash is stored."""
    token, digest = new_reset_token()
    expires = now + RESET_TOKEN_TTL
    session.add(PasswordResetToken(token_hash=digest, user_id=user.id, expires_at=expires, used_at=None))
    return m.ResetTokenPublic(token=token, expires_at=expires)


def reset_password(*, session: Session, token: str, new_password: str, now: dt.datetime) -> None:
    """Set a new password with a reset token; the token is spent, expired or unknown ones get 400."""
    row = session.get(PasswordResetToken, hash_token(token))
    if row is None or row.used_at is not None or row.expires_at <= now:
        why = "unknown" if row is None else "already used" if row.used_at is not None else "expired"
        raise ProblemError(400, f"reset token {why}", kind="bad-reset-token", errors=[("token", why)])
    user = session.get(User, row.user_id)
    if user is None:
        raise ProblemError(400, "reset token unknown", kind="bad-reset-token", errors=[("token", "unknown")])
    user.password_hash = hash_password(new_password)
    row.used_at = now


# --- programs and quotas -----------------------------------------------------------------


def program_public(*, program: Program) -> m.ProgramPublic:
    """The public view of a program row."""
    return m.ProgramPublic(
        code=program.code,
        name=program.name,
        grade=program.grade,
        quota_percent=program.quota_percent,
        priority=GRADE_PRIORITY[Grade(program.grade)].value,
        created_at=program.created_at,
    )


def create_program(
    *, session: Session, code: str, grade: str, quota_percent: float, now: dt.datetime, name: str = ""
) -> Program:
    """A new scientific program; 409 when the code is taken."""
    if session.get(Program, code) is not None:
        raise ProblemError(409, f"program {code} exists", kind="conflict", errors=[("code", "taken")])
    if grade not in ("A", "B", "C") or not 0 <= quota_percent <= 100:
        raise ProblemError(
            422, "grade must be A, B or C and quota_percent within [0, 100]", kind="validation"
        )
    program = Program(code=code, name=name, grade=grade, quota_percent=quota_percent, created_at=now)
    session.add(program)
    session.flush()
    return program


def get_program(*, session: Session, code: str, user: CurrentUser) -> Program:
    """The program ``code`` if the user may see it; 404 otherwise."""
    program = session.get(Program, code)
    if program is None or (not user.sees_all and code not in user.programs):
        raise ProblemError(404, f"no program {code}", kind="not-found")
    return program


def quota(*, session: Session, program: Program, semester: Semester, site: Site) -> m.QuotaPublic:
    """Allocated, booked, used and left time of ``program`` in ``semester``."""
    night_s = semester_night_time_s(site, semester)
    alloc = allocated_s(program.quota_percent, night_s)
    booked, used = session.execute(
        select(
            func.coalesce(func.sum(QuotaEntry.booked_s), 0.0), func.coalesce(func.sum(QuotaEntry.used_s), 0.0)
        )
        .where(QuotaEntry.program_code == program.code)
        .where(QuotaEntry.semester == str(semester))
    ).one()
    booked, used = float(booked), float(used)
    left = alloc - booked - used
    return m.QuotaPublic(
        program=program.code,
        semester=str(semester),
        quota_percent=program.quota_percent,
        semester_night_s=round(night_s, 1),
        allocated_s=round(alloc, 1),
        booked_s=round(booked, 1),
        used_s=round(used, 1),
        left_s=round(left, 1),
        allocated_h=round(alloc / 3600, 3),
        booked_h=round(booked / 3600, 3),
        used_h=round(used / 3600, 3),
        left_h=round(left / 3600, 3),
    )


def current_semester(*, site: Site, now: dt.datetime) -> Semester:
    """The semester of tonight's night."""
    return Semester.of(tonight(site, now))


# --- requests: checking ------------------------------------------------------------------


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
    return Checked(request=request, plans=plans, quotas=quotas)


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


# --- requests: storing and reading ---------------------------------------------------------


def new_request_id() -> str:
    """A fresh request id."""
    return f"r-{uuid.uuid4().hex[:16]}"


def advance(current: str, target: str) -> str:
    """Walk the state table from ``current`` to ``target`` by its shortest path; IllegalTransition if none."""
    start, goal = State(current), State(target)
    if start == goal:
        return goal
    prev: dict[State, State] = {}
    queue = deque([start])
    while queue:
        s = queue.popleft()
        for n in sorted(TRANSITIONS[s]):
            if n not in prev and n != start:
                prev[n] = s
                queue.append(n)
    if goal not in prev:
        raise IllegalTransition(start, goal)
    path = [goal]
    while path[-1] != start:
        path.append(prev[path[-1]])
    state = start
    for step in reversed(path[:-1]):
        state = transition(state, step)
    return state


def _rows(
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
    row = _rows(request, request_id, state, now, checked.plans, [p.duration_s for p in checked.plans])
    session.add(row)
    _book(session, request.program, request_id, row.sequences, checked.plans)
    session.flush()
    return row, changed_event_with_grade(session=session, row=row, action="accepted")


def _book(
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


def _visible(user: CurrentUser, program: str) -> bool:
    return user.sees_all or program in user.programs


def get_request(*, session: Session, user: CurrentUser, request_id: str) -> RequestRow:
    """The request if the user may see it; 404 otherwise (others' requests do not exist for them)."""
    row = session.scalar(
        select(RequestRow).where(RequestRow.id == request_id).options(selectinload(RequestRow.sequences))
    )
    if row is None or not _visible(user, row.program_code):
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
    q = select(RequestRow)
    if not user.sees_all:
        q = q.where(RequestRow.program_code.in_(sorted(user.programs)))
    if program is not None:
        q = q.where(RequestRow.program_code == program)
    if state is not None:
        q = q.where(RequestRow.state == state)
    if kind is not None:
        q = q.where(RequestRow.kind == kind)
    if owner is not None:
        q = q.where(RequestRow.owner == owner)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(RequestRow.created_at.desc(), RequestRow.id)
        .limit(limit)
        .offset(offset)
        .options(selectinload(RequestRow.sequences))
    ).all()
    return list(rows), int(total)


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
    seqs = sorted(row.sequences, key=lambda s: s.id)
    return m.RequestPublic(
        id=row.id,
        name=row.name,
        program=row.program_code,
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


# --- requests from the bus -----------------------------------------------------------------

ALERTS_PRINCIPAL = CurrentUser(id=0, username="alerts", role="expert", programs=frozenset())


def site_overheads(site: Site) -> Overheads:
    """The overheads routines charges: the node's largest (one telescope: its own profile)."""
    return node_overheads(t.overheads for t in site.telescopes)


def with_sequence_ids(request: Request, request_id: str, keep: dict[str, str] | None = None) -> Request:
    """``request`` with every sequence id set: ``keep`` (name -> id) first, else ``<request>-s<n>``.

    Ids are made here once, at acceptance; a revision keeps the id of each sequence it keeps.
    """
    keep = keep or {}
    used = set(keep.values()) | {s.id for s in request.sequences if s.id}
    n, seqs = 0, []
    for seq in request.sequences:
        sid = keep.get(seq.name) or (seq.id if seq.id and seq.id.startswith(f"{request_id}-s") else None)
        while sid is None:
            n += 1
            candidate = f"{request_id}-s{n}"
            if candidate not in used:
                sid = candidate
        used.add(sid)
        seqs.append(seq if seq.id == sid else seq.model_copy(update={"id": sid}))
    return request.model_copy(update={"sequences": seqs})


def _grade(session: Session, program: str) -> str | None:
    row = session.get(Program, program)
    return None if row is None else row.grade


def changed_event_with_grade(*, session: Session, row: RequestRow, action: str) -> RequestChanged:
    """``changed_event`` plus the program's grade (the scheduler's priority)."""
    ev = changed_event(row=row, action=action)
    grade = _grade(session, row.program_code)
    return ev if grade is None else ev.model_copy(update={"grade": grade})


def admit_foreign_request(
    *, session: Session, event: RequestChanged, site: Site, now: dt.datetime
) -> RequestChanged | None:
    """Admit an alert request announced on the bus, as any request: night, visibility, quota.

    ``submitted`` is checked and stored accepted or rejected; ``changed`` (a better position)
    re-checks the stored request, keeps its sequence ids, re-books its time. Returns the event
    routines publishes (accepted, rejected, changed or cancelled), None when nothing changes.
    """
    if event.document is None:
        return None
    row = session.scalar(
        select(RequestRow)
        .where(RequestRow.id == event.request_id)
        .options(selectinload(RequestRow.sequences))
    )
    owner = event.owner or event.producer or "alerts"
    fields = {k: getattr(event.document, k) for k in RequestContent.model_fields}
    try:
        request = Request.model_validate({**fields, "user": owner, "id": event.request_id})
    except ValidationError as exc:
        reason = f"request document refused: {validation_problem(exc).detail}"
        return _reject_foreign(session=session, event=event, row=row, now=now, reason=reason)
    if row is not None and State(row.state) in TERMINAL:
        log.info("revision of a finished request ignored", request_id=row.id, state=row.state)
        return None
    try:
        checked = check_request(session=session, user=ALERTS_PRINCIPAL, request=request, site=site, now=now)
    except ProblemError as exc:
        if row is None:
            return _reject_foreign(session=session, event=event, row=None, now=now, reason=exc.detail)
        # A revision that can no longer be observed ends the request, with the reason.
        row.reason = f"revision refused: {exc.detail}"
        cancel_row(session=session, row=row, now=now)
        return changed_event_with_grade(session=session, row=row, action="cancelled")
    if row is None:
        row, _ = store_request(session=session, checked=checked, now=now)
        row.reason = event.reason
        return changed_event_with_grade(session=session, row=row, action="accepted")
    keep = {q.name: q.id for q in row.sequences}
    give_back(session=session, sequence_ids=list(keep.values()))
    row.sequences.clear()
    session.flush()
    fresh = _rows(
        request, row.id, State.ACCEPTED.value, now, checked.plans, [p.duration_s for p in checked.plans], keep
    )
    row.document = fresh.document
    row.name = fresh.name
    row.state = State.ACCEPTED.value if State(row.state) is not State.EXECUTING else row.state
    row.reason = event.reason
    row.updated_at = now
    for srow in list(fresh.sequences):
        fresh.sequences.remove(srow)
        row.sequences.append(srow)
    _book(session, request.program, row.id, row.sequences, checked.plans)
    session.flush()
    return changed_event_with_grade(session=session, row=row, action="changed")


def _reject_foreign(
    *, session: Session, event: RequestChanged, row: RequestRow | None, now: dt.datetime, reason: str
) -> RequestChanged:
    log.warning("alert request refused", request_id=event.request_id, reason=reason)
    if row is None and event.document is not None:
        try:
            fields = {k: getattr(event.document, k) for k in RequestContent.model_fields}
            request = Request.model_validate(
                {**fields, "user": event.owner or "alerts", "id": event.request_id}
            )
            row = _rows(
                request, event.request_id, State.REJECTED.value, now, None, [0.0] * len(request.sequences)
            )
            session.add(row)
        except ValidationError:
            row = None
    if row is not None:
        row.reason = reason
        session.flush()
        return changed_event_with_grade(session=session, row=row, action="rejected")
    return RequestChanged(
        request_id=event.request_id,
        action="rejected",
        state=State.REJECTED.value,
        kind=event.kind,
        program=event.program,
        owner=event.owner,
        reason=reason,
    )


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
