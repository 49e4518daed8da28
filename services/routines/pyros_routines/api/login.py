"""Login: OAuth2 password flow, self-registration, password reset. No token needed here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm
from pyros_common.auth import create_access_token
from pyros_common.problem import ProblemRoute, problems
from sqlalchemy.orm import Session

from pyros_routines import models as m
from pyros_routines import users
from pyros_routines.deps import CtxDep, DbDep, UserDep, in_session

router = APIRouter(prefix="/login", tags=["login"], route_class=ProblemRoute)


@router.post(
    "/access-token",
    summary="Exchange user name and password for a bearer token (OAuth2 password flow).",
    responses=problems(401, 403, 422),
)
async def access_token(
    ctx: CtxDep, db: DbDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> m.Token:
    user = await in_session(db, users.authenticate, username=form.username, password=form.password)
    token = create_access_token(user.username, settings=ctx.settings, now=ctx.clock.now())
    return m.Token(access_token=token, expires_in=ctx.settings.jwt_ttl_s)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Ask for an account; it stays inactive until an admin validates it.",
    responses=problems(409, 422),
)
async def register(ctx: CtxDep, db: DbDep, body: m.UserRegister) -> m.UserPublic:
    def work(session: Session) -> m.UserPublic:
        user = users.create_user(
            session=session,
            username=body.username,
            password=body.password,
            email=body.email,
            role="user",
            active=False,
            now=ctx.clock.now(),
        )
        return users.user_public(user=user)

    return await in_session(db, work)


@router.post(
    "/reset-password",
    summary="Set a new password with a single-use reset token (issued by an admin).",
    responses=problems(400, 422),
)
async def reset_password(ctx: CtxDep, db: DbDep, body: m.PasswordReset) -> m.Message:
    await in_session(
        db, users.reset_password, token=body.token, new_password=body.new_password, now=ctx.clock.now()
    )
    return m.Message(message="password changed")


@router.post("/test-token", summary="Who the token belongs to.", responses=problems(401, 422))
async def test_token(db: DbDep, user: UserDep) -> m.UserPublic:
    def work(session: Session) -> m.UserPublic:
        return users.user_public(user=users.get_user(session=session, user_id=user.id))

    return await in_session(db, work)
