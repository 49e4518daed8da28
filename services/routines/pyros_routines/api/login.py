"""Login: OAuth2 password flow, self-registration, password reset. No token needed here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pyros_common.auth import create_access_token, token_version
from pyros_common.problem import ProblemError, ProblemRoute, problem_response, problems
from sqlalchemy.orm import Session
from starlette.responses import Response

from pyros_routines import models as m
from pyros_routines import users
from pyros_routines.deps import CtxDep, DbDep, UserDep, in_session
from pyros_routines.domain.throttle import Throttle
from pyros_routines.settings import RoutinesSettings

log = structlog.get_logger("pyros.routines")

router = APIRouter(prefix="/login", tags=["login"], route_class=ProblemRoute)


@dataclass
class LoginThrottles:
    """Failed logins per user name and per client address, for this process."""

    user: Throttle
    address: Throttle


def _throttles(request: Request) -> LoginThrottles:
    state = request.app.state
    found: LoginThrottles | None = getattr(state, "login_throttles", None)
    if found is None:
        cfg = RoutinesSettings()
        found = LoginThrottles(
            user=Throttle(cfg.login_failures_per_user, cfg.login_window_s),
            address=Throttle(cfg.login_failures_per_address, cfg.login_window_s),
        )
        state.login_throttles = found
    return found


@router.post(
    "/access-token",
    summary="Exchange user name and password for a bearer token (OAuth2 password flow).",
    response_model=m.Token,
    responses=problems(401, 403, 422, 429),
)
async def access_token(
    request: Request, ctx: CtxDep, db: DbDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> m.Token | Response:
    name = form.username.strip().lower()
    address = request.client.host if request.client else "unknown"
    throttles = _throttles(request)
    now = ctx.clock.now().timestamp()
    wait = max(throttles.user.retry_after_s(name, now), throttles.address.retry_after_s(address, now))
    if wait:
        log.warning("login throttled", user=form.username, address=address, retry_after_s=wait)
        refusal = ProblemError(429, f"too many failed logins; try again in {wait} s", kind="too-many-logins")
        return problem_response(refusal, headers={"Retry-After": str(wait)})
    try:
        user = await in_session(db, users.authenticate, username=form.username, password=form.password)
    except ProblemError as exc:
        if exc.status == 401:
            throttles.user.failed(name, now)
            throttles.address.failed(address, now)
            log.warning("login failed", user=form.username, address=address, reason=exc.detail)
        raise
    throttles.user.succeeded(name)
    version = token_version(user.password_hash, user.role)
    token = create_access_token(user.username, settings=ctx.settings, now=ctx.clock.now(), version=version)
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
