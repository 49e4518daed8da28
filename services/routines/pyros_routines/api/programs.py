"""Scientific programs and their quotas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pyros_common.db.models import Program
from pyros_common.domain.programs.quotas import Semester
from pyros_common.problem import ProblemRoute, problems
from sqlalchemy import select
from sqlalchemy.orm import Session

from pyros_routines import models as m
from pyros_routines import programs
from pyros_routines.deps import AdminDep, CtxDep, DbDep, SiteDep, UserDep, in_session

router = APIRouter(prefix="/programs", tags=["programs"], route_class=ProblemRoute)

Code = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$", description="Program code.")
]


@router.get(
    "", summary="Programs you belong to (every program for experts and admins).", responses=problems(401)
)
async def list_programs(db: DbDep, user: UserDep) -> m.ProgramsPublic:
    def work(session: Session) -> m.ProgramsPublic:
        q = select(Program).order_by(Program.code)
        if not user.sees_all:
            q = q.where(Program.code.in_(sorted(user.programs)))
        items = [programs.program_public(program=p) for p in session.scalars(q)]
        return m.ProgramsPublic(items=items, total=len(items))

    return await in_session(db, work)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a program (admin).",
    responses=problems(401, 403, 409, 422),
)
async def create_program(ctx: CtxDep, db: DbDep, _admin: AdminDep, body: m.ProgramCreate) -> m.ProgramPublic:
    def work(session: Session) -> m.ProgramPublic:
        p = programs.create_program(
            session=session,
            code=body.code,
            name=body.name,
            grade=body.grade,
            quota_percent=body.quota_percent,
            now=ctx.clock.now(),
        )
        return programs.program_public(program=p)

    return await in_session(db, work)


@router.get("/{code}", summary="One program.", responses=problems(401, 404, 422))
async def read_program(db: DbDep, user: UserDep, code: Code) -> m.ProgramPublic:
    def work(session: Session) -> m.ProgramPublic:
        return programs.program_public(program=programs.get_program(session=session, code=code, user=user))

    return await in_session(db, work)


@router.patch(
    "/{code}",
    summary="Change grade, name or quota of a program (admin).",
    responses=problems(401, 403, 404, 422),
)
async def update_program(db: DbDep, admin: AdminDep, code: Code, body: m.ProgramUpdate) -> m.ProgramPublic:
    def work(session: Session) -> m.ProgramPublic:
        p = programs.get_program(session=session, code=code, user=admin)
        if body.name is not None:
            p.name = body.name
        if body.grade is not None:
            p.grade = body.grade
        if body.quota_percent is not None:
            p.quota_percent = body.quota_percent
        return programs.program_public(program=p)

    return await in_session(db, work)


@router.get(
    "/{code}/quota",
    summary="Allocated, booked, used and left time of a program in a semester (seconds and hours).",
    responses=problems(401, 404, 422),
)
async def read_quota(
    ctx: CtxDep,
    db: DbDep,
    site: SiteDep,
    user: UserDep,
    code: Code,
    semester: Annotated[
        str | None,
        Query(pattern=r"^20[0-9]{2}[AB]$", description="e.g. 2026A (Jan-Jun), 2026B; default: tonight's."),
    ] = None,
) -> m.QuotaPublic:
    now = ctx.clock.now()

    def work(session: Session) -> m.QuotaPublic:
        sem = Semester.parse(semester) if semester else programs.current_semester(site=site, now=now)
        p = programs.get_program(session=session, code=code, user=user)
        return programs.quota(session=session, program=p, semester=sem, site=site)

    return await in_session(db, work)
