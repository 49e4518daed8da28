"""Requests announced on the bus (alert requests): admitted by the same checks as any other."""

from __future__ import annotations

import datetime as dt

import structlog
from pydantic import ValidationError
from pyros_common.auth import CurrentUser
from pyros_common.contracts import RequestChanged
from pyros_common.db.models import Request as RequestRow
from pyros_common.domain.requests import Request, RequestContent
from pyros_common.domain.requests.states import TERMINAL, State
from pyros_common.domain.sky.sites import Site
from pyros_common.problem import ProblemError, validation_problem
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pyros_routines.requests import (
    book_time,
    cancel_row,
    changed_event_with_grade,
    check_request,
    give_back,
    request_rows,
    store_request,
)

log = structlog.get_logger("pyros.routines")

ALERTS_PRINCIPAL = CurrentUser(id=0, username="alerts", role="expert", programs=frozenset())


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
    # Locked (requests.lock_requests' order: the request's row before its program's).
    row = session.scalar(
        select(RequestRow)
        .where(RequestRow.id == event.request_id)
        .options(selectinload(RequestRow.sequences))
        .with_for_update()
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
        row, accepted = store_request(session=session, checked=checked, now=now)
        row.reason = event.reason
        # the event store_request built, with the reason: not built (and validated) twice
        return accepted.model_copy(update={"reason": event.reason})
    keep = {q.name: q.id for q in row.sequences}
    give_back(session=session, sequence_ids=list(keep.values()))
    row.sequences.clear()
    session.flush()
    fresh = request_rows(
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
    book_time(session, request.program, row.id, row.sequences, checked.plans)
    session.flush()
    return changed_event_with_grade(session=session, row=row, action="changed", grade=checked.grade)


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
            row = request_rows(
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
