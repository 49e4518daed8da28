"""Routines' use cases for users: accounts, roles, passwords and reset tokens. Keyword-only."""

from __future__ import annotations

import datetime as dt

from pyros_common.auth import CurrentUser, hash_password, hash_token, new_reset_token, verify_password
from pyros_common.db.models import PasswordResetToken, Program, ProgramMember, User
from pyros_common.problem import ProblemError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pyros_routines import models as m
from pyros_routines.settings import RoutinesSettings


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
    if "\x00" in username or "\x00" in password:
        raise ProblemError(401, "incorrect user name or password", kind="bad-credentials")
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
    """A new account; 409 when the name is taken, whatever its case ('Alice' takes 'alice')."""
    taken = select(User.id).where(func.lower(User.username) == username.lower()).limit(1)
    if session.scalar(taken) is not None:
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
    expires = now + RoutinesSettings().reset_token_ttl
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
