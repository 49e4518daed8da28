"""Requests: submit, validate, list, read, cancel, export and import."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Response, status
from pydantic import SkipValidation
from pyros_common.domain.requests.document import RequestDocument
from pyros_common.domain.requests.states import State
from pyros_common.problem import ProblemRoute, problems
from sqlalchemy.orm import Session

from pyros_routines import models as m
from pyros_routines import requests
from pyros_routines.deps import CtxDep, DbDep, SiteDep, UserDep, in_session, publish

router = APIRouter(prefix="/requests", tags=["requests"], route_class=ProblemRoute)

RequestId = Annotated[str, Path(min_length=1, max_length=64, description="Request id.")]
SUBMIT_PROBLEMS = problems(401, 403, 409, 413, 422)
# The document as sent (JSON already parsed): it is validated on the worker thread with the rest
# of the submission, so that a large document never holds the event loop. The OpenAPI schema is
# still RequestDocument's.
RawDocument = Annotated[RequestDocument, SkipValidation]


async def _submit(ctx: CtxDep, db: DbDep, site: SiteDep, user: UserDep, document: Any) -> m.RequestPublic:
    now = ctx.clock.now()

    def work(session: Session) -> tuple[m.RequestPublic, Any]:
        request = requests.parse_document(document=document, user=user)
        checked = requests.check_request(session=session, user=user, request=request, site=site, now=now)
        row, event = requests.store_request(session=session, checked=checked, now=now)
        return requests.request_public(row=row), event

    public, event = await in_session(db, work)
    await publish(ctx, event)
    return public


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Submit a request: validated, visibility computed, time booked on the program's quota.",
    responses=SUBMIT_PROBLEMS,
)
async def submit(
    ctx: CtxDep, db: DbDep, site: SiteDep, user: UserDep, document: RawDocument
) -> m.RequestPublic:
    return await _submit(ctx, db, site, user, document)


@router.post(
    "/validate",
    summary="Check a request as a submission would (visibility, quota) without storing it.",
    responses=SUBMIT_PROBLEMS,
)
async def validate(
    ctx: CtxDep, db: DbDep, site: SiteDep, user: UserDep, document: RawDocument
) -> m.ValidationReport:
    now = ctx.clock.now()
    raw: Any = document

    def work(session: Session) -> m.ValidationReport:
        request = requests.parse_document(document=raw, user=user)
        checked = requests.check_request(session=session, user=user, request=request, site=site, now=now)
        return requests.preview(checked=checked)

    return await in_session(db, work)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    summary="Import a request document (schema pyros.request/1) as a new request of yours.",
    responses=SUBMIT_PROBLEMS,
)
async def import_request(
    ctx: CtxDep,
    db: DbDep,
    site: SiteDep,
    user: UserDep,
    document: Annotated[dict[str, Any], Body(description="A pyros.request/1 document, as exported.")],
) -> m.RequestPublic:
    return await _submit(ctx, db, site, user, document)


@router.get(
    "",
    summary="Requests you may see, newest first.",
    response_model=m.RequestsPublic,
    responses=problems(401, 422),
)
async def list_requests(
    db: DbDep,
    user: UserDep,
    program: Annotated[
        str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Program code.")
    ] = None,
    state: Annotated[State | None, Query(description="Request state.")] = None,
    kind: Annotated[Literal["routine", "alert"] | None, Query()] = None,
    owner: Annotated[
        str | None, Query(max_length=128, pattern=r"^[^\x00]*$", description="Owner's user name.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    # Built and serialised on the worker thread: the loop only sends the bytes.
    def work(session: Session) -> bytes:
        page = requests.list_public(
            session=session,
            user=user,
            program=program,
            state=state.value if state else None,
            kind=kind,
            owner=owner,
            limit=limit,
            offset=offset,
        )
        return page.model_dump_json().encode()

    return Response(await in_session(db, work), media_type="application/json")


@router.get("/{request_id}", summary="One request.", responses=problems(401, 404, 422))
async def read_request(db: DbDep, user: UserDep, request_id: RequestId) -> m.RequestPublic:
    def work(session: Session) -> m.RequestPublic:
        return requests.request_public(
            row=requests.get_request(session=session, user=user, request_id=request_id)
        )

    return await in_session(db, work)


@router.get(
    "/{request_id}/export",
    summary="The request document (schema pyros.request/1) of a request.",
    responses=problems(401, 404, 422),
)
async def export_request(db: DbDep, user: UserDep, request_id: RequestId) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        row = requests.get_request(session=session, user=user, request_id=request_id)
        return requests.exported_document(row=row)

    return await in_session(db, work)


@router.post(
    "/{request_id}/cancel",
    summary="Cancel a request; the unobserved time goes back to the program.",
    responses=problems(401, 404, 409, 422),
)
async def cancel(
    ctx: CtxDep,
    db: DbDep,
    user: UserDep,
    request_id: RequestId,
    body: Annotated[m.CancelBody | None, Body()] = None,
) -> m.RequestPublic:
    now = ctx.clock.now()

    def work(session: Session) -> tuple[m.RequestPublic, Any]:
        row, event = requests.cancel_request(
            session=session, user=user, request_id=request_id, now=now, reason=body.reason if body else ""
        )
        return requests.request_public(row=row), event

    public, event = await in_session(db, work)
    await publish(ctx, event)
    return public
