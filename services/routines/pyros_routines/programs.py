"""Routines' use cases for scientific programs and their quotas. Keyword-only."""

from __future__ import annotations

import datetime as dt

from pyros_common.auth import CurrentUser
from pyros_common.db.models import Program, QuotaEntry
from pyros_common.domain.programs.priority import GRADE_PRIORITY
from pyros_common.domain.programs.quotas import (
    Grade,
    Semester,
    allocated_s,
    semester_night_time_s,
)
from pyros_common.domain.sky.night import tonight
from pyros_common.domain.sky.sites import Site
from pyros_common.problem import ProblemError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyros_routines import models as m


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
