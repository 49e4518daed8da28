"""Users: your own account, and the admin's administration of every account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pyros_common.auth import hash_password, verify_password
from pyros_common.db.models import User
from pyros_common.problem import ProblemError, ProblemRoute, problems
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyros_routines import models as m
from pyros_routines import users
from pyros_routines.deps import AdminDep, CtxDep, DbDep, UserDep, in_session

UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="User id.")]

router = APIRouter(prefix="/users", tags=["users"], route_class=ProblemRoute)


@router.get("/me", summary="Your account.", responses=problems(401))
async def read_me(db: DbDep, user: UserDep) -> m.UserPublic:
    def work(session: Session) -> m.UserPublic:
        return users.user_public(user=users.get_user(session=session, user_id=user.id))

    return await in_session(db, work)


@router.patch("/me", summary="Change your contact address.", responses=problems(401, 422))
async def update_me(db: DbDep, user: UserDep, body: m.UserUpdateMe) -> m.UserPublic:
    def work(session: Session) -> m.UserPublic:
        row = users.get_user(session=session, user_id=user.id)
        if body.email is not None:
            row.email = body.email
        return users.user_public(user=row)

    return await in_session(db, work)


@router.post("/me/password", summary="Change your password.", responses=problems(400, 401, 422))
async def change_password(db: DbDep, user: UserDep, body: m.PasswordChange) -> m.Message:
    def work(session: Session) -> m.Message:
        row = users.get_user(session=session, user_id=user.id)
        if not verify_password(body.current_password, row.password_hash):
            raise ProblemError(
                400, "current password is wrong", kind="bad-password", errors=[("current_password", "wrong")]
            )
        row.password_hash = hash_password(body.new_password)
        return m.Message(message="password changed")

    return await in_session(db, work)


@router.get("", summary="Every account (admin).", responses=problems(401, 403, 422))
async def list_users(
    db: DbDep,
    _admin: AdminDep,
    active: Annotated[bool | None, Query(description="Only validated (true) or waiting (false).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> m.UsersPublic:
    def work(session: Session) -> m.UsersPublic:
        q = select(User)
        if active is not None:
            q = q.where(User.active.is_(active))
        total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = session.scalars(q.order_by(User.id).limit(limit).offset(offset)).all()
        return m.UsersPublic(items=[users.user_public(user=u) for u in rows], total=total)

    return await in_session(db, work)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account (admin).",
    responses=problems(401, 403, 409, 422),
)
async def create_user(ctx: CtxDep, db: DbDep, _admin: AdminDep, body: m.UserCreate) -> m.UserPublic:
    def work(session: Session) -> m.UserPublic:
        user = users.create_user(
            session=session,
            username=body.username,
            password=body.password,
            email=body.email,
            role=body.role,
            active=body.active,
            programs=body.programs,
            now=ctx.clock.now(),
        )
        return users.user_public(user=user)

    return await in_session(db, work)


@router.get("/{user_id}", summary="One account (admin).", responses=problems(401, 403, 404, 422))
async def read_user(db: DbDep, _admin: AdminDep, user_id: UserId) -> m.UserPublic:
    def work(session: Session) -> m.UserPublic:
        return users.user_public(user=users.get_user(session=session, user_id=user_id))

    return await in_session(db, work)


@router.patch(
    "/{user_id}",
    summary="Validate, change role, programs or password of an account (admin).",
    responses=problems(401, 403, 404, 409, 422),
)
async def update_user(db: DbDep, admin: AdminDep, user_id: UserId, body: m.UserUpdate) -> m.UserPublic:
    def work(session: Session) -> m.UserPublic:
        row = users.get_user(session=session, user_id=user_id)
        return users.user_public(user=users.update_user(session=session, user=row, changes=body, by=admin))

    return await in_session(db, work)


@router.post(
    "/{user_id}/reset-token",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a single-use password reset token for an account (admin).",
    responses=problems(401, 403, 404, 422),
)
async def reset_token(ctx: CtxDep, db: DbDep, _admin: AdminDep, user_id: UserId) -> m.ResetTokenPublic:
    def work(session: Session) -> m.ResetTokenPublic:
        row = users.get_user(session=session, user_id=user_id)
        return users.issue_reset_token(session=session, user=row, now=ctx.clock.now())

    return await in_session(db, work)
